//! `upkeep mcp`: a Model Context Protocol server on standard input and
//! output, so that an assistant (an MCP client) diagnoses nginx through
//! upkeep: `check`, `fix` (a diff unless asked to write), `explain`, `logs`
//! and `doctor` as tools with JSON arguments and JSON results.
//!
//! Each tool runs the same code as the command of the same name (see
//! `tools.rs`); what a command prints, a tool returns as structured content.
//! A failure is a tool result with `isError` and the message the command
//! would print, never a crash of the server.

mod params;
mod tools;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use super::fix::Signals;

#[derive(clap::Args, Debug)]
pub struct Args {}

/// What the tools share: the signal flags that a `fix` write consults
/// between its steps, and whether one is under way.
pub struct Shared {
    pub signals: Signals,
    pub writing: AtomicBool,
}

#[derive(Clone)]
struct Server {
    shared: Arc<Shared>,
    tools: Arc<Vec<Tool>>,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    // Standard output carries the protocol, and nothing else may reach it:
    // the protocol gets its own copy of the descriptor, and descriptor 1
    // becomes standard error for anything that prints.
    let protocol_out = protocol_stdout()?;
    let shared = Arc::new(Shared {
        signals: Signals::install()?,
        writing: AtomicBool::new(false),
    });
    stop_on_signal(shared.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let server = Server {
        shared,
        tools: Arc::new(tools::list()),
    };
    let served = runtime.block_on(async move {
        let out = tokio::fs::File::from_std(std::fs::File::from(protocol_out));
        let service = server
            .serve((tokio::io::stdin(), out))
            .await
            .map_err(|e| anyhow::anyhow!("MCP initialization: {e}"))?;
        service
            .waiting()
            .await
            .map_err(|e| anyhow::anyhow!("MCP session: {e}"))
    });
    // A tool still running when the client leaves (a large log) is not
    // waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// A duplicate of descriptor 1 for the protocol; descriptor 1 itself then
/// points at standard error.
fn protocol_stdout() -> anyhow::Result<OwnedFd> {
    // SAFETY: dup and dup2 take and return plain descriptors; the new one is
    // owned by the OwnedFd from here on.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("duplicating standard output");
        }
        if libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error()).context("redirecting standard output");
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// SIGINT, SIGTERM and SIGHUP are caught so that a `fix` write in progress
/// rolls back instead of dying half way; outside a write (and right after
/// one) they end the server as they would without the handlers.
fn stop_on_signal(shared: Arc<Shared>) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(signal) = shared.signals.caught() {
            if !shared.writing.load(Ordering::SeqCst) {
                std::process::exit(128 + signal);
            }
        }
    });
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("upkeep", env!("CARGO_PKG_VERSION"))
                    .with_title("upkeep: nginx keep-alive linter and fixer"),
            )
            .with_instructions(
                "Diagnose nginx keep-alive (connection reuse) problems: `check` a configuration \
                 (a path, or its text), `explain` a rule, `fix` to get the diff (files are written \
                 only with write=true, validated by nginx -t), `logs` to classify upstream failures \
                 in error logs, `doctor` for the live host.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = self.get_tool(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool {:?} (the tools are check, fix, explain, logs, doctor)",
                    request.name
                ),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        let shared = self.shared.clone();
        // The work reads files and runs nginx: off the async threads. A
        // panic there is reported as the tool's error; the server goes on.
        let done =
            tokio::task::spawn_blocking(move || tools::call(&tool, arguments, &shared)).await;
        let result = match done {
            Ok(Ok(value)) => CallToolResult::structured(value),
            Ok(Err(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "internal error in upkeep (please report it): {e}"
            ))]),
        };
        Ok(result.into())
    }
}
