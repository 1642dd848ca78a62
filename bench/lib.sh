# Shared by the bench scripts (sourced, not run).

# Sets UPKEEP to a release build of the CLI, unless the caller gave one
# (UPKEEP=/path/to/upkeep bench/…).
upkeep_release_binary() {
    if [ -n "${UPKEEP:-}" ]; then
        return
    fi
    echo "building upkeep (release)..." >&2
    cargo build --release -q -p upkeep-cli
    local target_dir
    target_dir=$(cargo metadata --format-version 1 --no-deps \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    UPKEEP="$target_dir/release/upkeep"
}
