//! The `std::process::Command` for one recipe line, as make builds it: the shell-less fast path
//! under the default shell, else `SHELL` (with any words of its own), the `.SHELLFLAGS` words and
//! the line; the environment replaced by the job's.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The command for one line, and the program name make uses in messages about it.
#[derive(Debug)]
pub struct LineCommand {
    /// Ready to spawn; stdio, directory and process group are the caller's to set.
    pub command: Command,
    /// The program as the line or `SHELL` names it (`cc`, `/bin/sh`): what make prints before
    /// `: No such file or directory` when it cannot be started.
    pub program: String,
    /// Whether the line runs without a shell.
    pub direct: bool,
}

/// The argument words of `command` when make would exec it without a shell: only under the
/// default shell (`/bin/sh` with `-c` or `-ec`), and only for a simple command
/// (see [`crate::direct::direct_argv`]).
pub fn direct_argv(shell: &str, shell_flags: &str, command: &str) -> Option<Vec<String>> {
    if shell != "/bin/sh" || !(shell_flags == "-c" || shell_flags == "-ec") {
        return None;
    }
    crate::direct::direct_argv(command)
}

/// The executable `program` names through the `PATH` of `env` (as execvp would find it);
/// `None` for a name with a slash or one not found.
pub fn resolve_in_path(program: &str, env: &[(String, String)]) -> Option<String> {
    if program.contains('/') {
        return None;
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())?;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{program}");
        if let Ok(meta) = std::fs::metadata(&cand) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Some(cand);
            }
        }
    }
    None
}

/// Builds the command that runs `line` under `shell` and `shell_flags` with exactly `env`.
///
/// A simple line under the default shell runs directly (its program resolved through `env`'s
/// `PATH` here, so std can use `posix_spawn`, with `argv[0]` kept as written); anything else
/// runs as `SHELL-words... SHELLFLAGS-words... line`.
pub fn line_command(
    line: &str,
    shell: &str,
    shell_flags: &str,
    env: &[(String, String)],
) -> LineCommand {
    let direct = direct_argv(shell, shell_flags, line);
    // SHELL may carry arguments of its own (`SHELL = /bin/sh -e`).
    let mut shell_words = shell.split_whitespace();
    let shell_program = shell_words.next().unwrap_or("/bin/sh");
    let mut command;
    let program;
    match &direct {
        Some(words) => {
            program = words.first().cloned().unwrap_or_default();
            let resolved = resolve_in_path(&program, env);
            command = Command::new(resolved.as_deref().unwrap_or(&program));
            if resolved.is_some() {
                command.arg0(&program);
            }
            command.args(words.iter().skip(1));
        }
        None => {
            program = shell_program.to_string();
            command = Command::new(shell_program);
            command.args(shell_words);
            command.args(shell_flags.split_whitespace());
            command.arg(line);
        }
    }
    command.env_clear();
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    LineCommand {
        command,
        program,
        direct: direct.is_some(),
    }
}

/// make's words for why `program` could not be started: `prog: No such file or directory`.
pub fn spawn_error_text(program: &str, err: &std::io::Error) -> String {
    let reason = match err.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
        _ => err.to_string(),
    };
    format!("{program}: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("A".into(), "1".into()),
        ]
    }

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn simple_line_runs_without_the_shell() {
        let lc = line_command("echo a 'b c'", "/bin/sh", "-c", &env());
        assert!(lc.direct);
        assert_eq!(lc.program, "echo");
        assert!(lc
            .command
            .get_program()
            .to_string_lossy()
            .ends_with("/echo"));
        assert_eq!(args(&lc.command), vec!["a", "b c"]);
        let envs: Vec<_> = lc.command.get_envs().collect();
        assert_eq!(envs.len(), 2);
    }

    #[test]
    fn other_shells_and_flags_use_the_shell() {
        let lc = line_command("echo a", "/bin/sh -e", "-c", &env());
        assert!(!lc.direct);
        assert_eq!(lc.command.get_program(), "/bin/sh");
        assert_eq!(args(&lc.command), vec!["-e", "-c", "echo a"]);
        let lc = line_command("echo a", "/bin/sh", "-x -c", &env());
        assert!(!lc.direct);
        assert_eq!(args(&lc.command), vec!["-x", "-c", "echo a"]);
        let lc = line_command("echo $A", "/bin/sh", "-ec", &env());
        assert!(!lc.direct);
        assert_eq!(args(&lc.command), vec!["-ec", "echo $A"]);
    }

    #[test]
    fn unknown_program_keeps_its_name() {
        let lc = line_command("no-such-prog-xyz a", "/bin/sh", "-c", &env());
        assert!(lc.direct);
        assert_eq!(lc.command.get_program(), "no-such-prog-xyz");
        let err = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            spawn_error_text(&lc.program, &err),
            "no-such-prog-xyz: No such file or directory"
        );
    }

    #[test]
    fn path_lookup_honours_the_env() {
        assert!(resolve_in_path("sh", &env()).is_some());
        assert_eq!(resolve_in_path("sh", &[]), None);
        assert_eq!(resolve_in_path("./sh", &env()), None);
    }
}
