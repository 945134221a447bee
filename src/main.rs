//! The `themap` command: parse arguments, set up logging, run, and turn errors into exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose, args.quiet);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // `themap themes | head`: the reader has what it wanted; not an error (as in ripgrep).
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("themap: error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// 2: the request itself is wrong (bad setting); 1: anything else that failed.
fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<themap::Error>() {
        Some(
            themap::Error::InvalidArgument(_)
            | themap::Error::InvalidDims { .. }
            | themap::Error::OutputExists { .. }
            | themap::Error::ResumeMismatch(_)
            | themap::Error::VectorsMismatch { .. }
            | themap::Error::DeviceUnavailable(_),
        ) => 2,
        _ => 1,
    }
}

/// Logs go to stderr; `THEMAP_LOG` (or `RUST_LOG`) overrides the level set by -v / -q.
fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // hnsw_rs logs every graph it creates at info level (through `log`); that is noise here.
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info,hnsw_rs=warn",
        (false, 1) => "themap=debug,hnsw_rs=warn,info",
        (false, _) => "debug",
    };
    let filter = std::env::var("THEMAP_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}
