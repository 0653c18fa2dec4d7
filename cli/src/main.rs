//! The `rmake-remote` binary: parses arguments and hands over to the library.

fn main() -> std::process::ExitCode {
    rmake_cli::run(std::env::args().collect())
}
