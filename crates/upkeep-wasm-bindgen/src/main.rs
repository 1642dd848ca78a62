//! `upkeep-wasm-bindgen INPUT.wasm OUT_DIR`: writes `upkeep_wasm.js` (an ES
//! module for `--target web`) and `upkeep_wasm_bg.wasm` into OUT_DIR.
//!
//! This is what `wasm-bindgen --target web --no-typescript` does, run as a
//! library so the tool is built from Cargo.lock with the rest of the
//! workspace, at the same version as the `wasm-bindgen` crate.

use anyhow::{bail, Context as _};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir] = args.as_slice() else {
        bail!("usage: upkeep-wasm-bindgen INPUT.wasm OUT_DIR");
    };
    let input = PathBuf::from(input);
    if !input.is_file() {
        bail!(
            "{}: no such file (build upkeep-wasm for wasm32-unknown-unknown first)",
            input.display()
        );
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {out_dir}"))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .web(true)?
        .typescript(false)
        .generate(out_dir)
        .with_context(|| format!("generating the bindings of {}", input.display()))?;
    Ok(())
}
