//! The `--help` text (make's option list, plus rmake's own options) and the `--version` text.

/// The usage text, as make prints it for `--help` and after a bad option.
pub(crate) fn text(name: &str) -> String {
    let mut s = format!("Usage: {name} [options] [target] ...\nOptions:\n");
    let rows: &[(&str, &str)] = &[
        ("-b, -m", "Ignored for compatibility."),
        ("-B, --always-make", "Unconditionally make all targets."),
        ("-C DIRECTORY, --directory=DIRECTORY", "Change to DIRECTORY before doing anything."),
        ("-d", "Print lots of debugging information."),
        ("--debug[=FLAGS]", "Print various types of debugging information."),
        ("-e, --environment-overrides", "Environment variables override makefiles."),
        ("-E STRING, --eval=STRING", "Evaluate STRING as a makefile statement."),
        ("-f FILE, --file=FILE, --makefile=FILE", "Read FILE as a makefile."),
        ("-h, --help", "Print this message and exit."),
        ("-i, --ignore-errors", "Ignore errors from recipes."),
        ("-I DIRECTORY, --include-dir=DIRECTORY", "Search DIRECTORY for included makefiles."),
        ("-j [N], --jobs[=N]", "Allow N jobs at once; infinite jobs with no arg."),
        ("-k, --keep-going", "Keep going when some targets can't be made."),
        ("-l [N], --load-average[=N], --max-load[=N]", "Don't start multiple jobs unless load is below N."),
        ("-L, --check-symlink-times", "Use the latest mtime between symlinks and target."),
        ("-n, --just-print, --dry-run, --recon", "Don't actually run any recipe; just print them."),
        ("-o FILE, --old-file=FILE, --assume-old=FILE", "Consider FILE to be very old and don't remake it."),
        ("-O[TYPE], --output-sync[=TYPE]", "Synchronize output of parallel jobs by TYPE."),
        ("-p, --print-data-base", "Print make's internal database."),
        ("-q, --question", "Run no recipe; exit status says if up to date."),
        ("-r, --no-builtin-rules", "Disable the built-in implicit rules."),
        ("-R, --no-builtin-variables", "Disable the built-in variable settings."),
        ("-s, --silent, --quiet", "Don't echo recipes."),
        ("--no-silent", "Echo recipes (disable --silent mode)."),
        ("-S, --no-keep-going, --stop", "Turns off -k."),
        ("-t, --touch", "Touch targets instead of remaking them."),
        ("--trace", "Print tracing information."),
        ("-v, --version", "Print the version number of make and exit."),
        ("-w, --print-directory", "Print the current directory."),
        ("--no-print-directory", "Turn off -w, even if it was turned on implicitly."),
        ("-W FILE, --what-if=FILE, --new-file=FILE, --assume-new=FILE", "Consider FILE to be infinitely new."),
        ("--warn-undefined-variables", "Warn when an undefined variable is referenced."),
        ("--local", "Build on this machine, like GNU make (no farm)."),
        ("--coordinator=URL", "The build farm's coordinator (env RMAKE_COORDINATOR)."),
        ("--token=TOKEN", "The client token for the farm (env RMAKE_TOKEN)."),
        ("--download=all|goals|none", "Which outputs of a farm build to download."),
    ];
    for (opt, help) in rows {
        let left = format!("  {opt}");
        if left.len() < 30 {
            s.push_str(&format!("{left:<30}{help}\n"));
        } else {
            s.push_str(&format!("{left}\n{:<30}{help}\n", ""));
        }
    }
    s.push_str("\nThis program built for x86_64-pc-linux-gnu\n");
    s
}

/// The `--version` text: rmake's version and the GNU Make version it follows.
pub(crate) fn version() -> String {
    format!(
        "rmake-remote {} (compatible with GNU Make 4.3)\n\
         A distributed build client that runs GNU Makefiles unchanged.\n\
         License: MIT OR Apache-2.0.\n",
        env!("CARGO_PKG_VERSION")
    )
}
