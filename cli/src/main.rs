//! The `rmake-remote` binary: parses arguments and hands over to the library.

fn main() -> std::process::ExitCode {
    // Logs only when asked for (`RMAKE_LOG=rmake_cli=debug`): a build's output must read as make's.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("RMAKE_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    rmake_cli::run(std::env::args().collect())
}
