//! A private PostgreSQL cluster with password (SCRAM) authentication.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tempfile::TempDir;

use crate::util::{
    file_tail, find_on_path, fixture_dir, free_port, is_executable, orphaned_fixture_dirs,
    random_hex,
};

const DIR_PREFIX: &str = "gha-auth-pg-";
const START_ATTEMPTS: usize = 5;
const SERVER_LOG: &str = "postgres.log";

/// A PostgreSQL cluster of its own (fresh `initdb` in a temporary directory), listening on a
/// free port of 127.0.0.1, where every login needs the right password (`scram-sha-256`).
///
/// The shared server at :5432 uses trust authentication, which accepts any password; tests that
/// must prove a credential works (rotated, dynamic) use this instead. When running as root the
/// cluster runs as the `postgres` OS user (through `runuser`). Stopped (`pg_ctl stop -m
/// immediate`) and deleted on drop.
pub struct PrivatePostgres {
    dir: TempDir,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<&'static str>,
    port: u16,
    password: String,
}

impl fmt::Debug for PrivatePostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivatePostgres")
            .field("port", &self.port)
            .field("data_dir", &self.data_dir)
            .field("run_as", &self.run_as)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl PrivatePostgres {
    /// Directory with `initdb` and `pg_ctl`: `$GHA_AUTH_PG_BIN_DIR`, else the directory of
    /// `initdb` on `PATH`, else the newest `/usr/lib/postgresql/<version>/bin`.
    pub fn bin_dir() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os("GHA_AUTH_PG_BIN_DIR").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        // Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so
        // that the directory holds pg_ctl too.
        if let Some(dir) = find_on_path("initdb")
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            return Ok(dir);
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                is_executable(&bin.join("initdb")).then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, bin)| bin)
            .ok_or_else(|| anyhow!("no initdb on PATH nor in /usr/lib/postgresql/*/bin"))
    }

    /// Runs `initdb` and starts the cluster (about 1.5 s).
    pub async fn start() -> Result<Self> {
        let bin_dir = Self::bin_dir()?;
        let run_as = if running_as_root()? {
            Some("postgres")
        } else {
            None
        };
        sweep_orphans(&bin_dir, run_as);

        let dir = fixture_dir(DIR_PREFIX)?;
        let data_dir = dir.path().join("data");
        let password = random_hex(16)?;
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).context("writing the password file")?;
        if let Some(user) = run_as {
            let (uid, gid) = lookup_user(user)?;
            for path in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("chown {} to {user}", path.display()))?;
            }
        }

        let mut pg = PrivatePostgres {
            dir,
            data_dir,
            bin_dir,
            run_as,
            port: 0,
            password,
        };
        let initdb = pg.bin_dir.join("initdb");
        let data_arg = pg.data_dir.to_string_lossy().into_owned();
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        pg.run(
            &initdb,
            &[
                "-D",
                &data_arg,
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                &pwfile_arg,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb.out",
        )
        .await?;
        let _ = std::fs::remove_file(&pwfile);

        // Throwaway cluster: favour speed over durability, keep memory small.
        let extra_conf = format!(
            "\n# gha-auth-testkit\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             shared_buffers = 16MB\nmax_connections = 100\n",
            pg.dir.path().display()
        );
        append(&pg.data_dir.join("postgresql.conf"), &extra_conf)?;

        let pg_ctl = pg.bin_dir.join("pg_ctl");
        let log_arg = pg
            .dir
            .path()
            .join(SERVER_LOG)
            .to_string_lossy()
            .into_owned();
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let options = format!("-p {port}");
            match pg
                .run(
                    &pg_ctl,
                    &[
                        "start", "-D", &data_arg, "-l", &log_arg, "-w", "-t", "30", "-o", &options,
                    ],
                    "pg_ctl-start.out",
                )
                .await
            {
                Ok(()) => {
                    pg.port = port;
                    return Ok(pg);
                }
                Err(e) => {
                    let log = file_tail(&pg.dir.path().join(SERVER_LOG), 20);
                    if !log.contains("could not bind") && !log.contains("already in use") {
                        return Err(e.context(format!("postgres log tail:\n{log}")));
                    }
                    // Someone took the port in between: try another one.
                    last_error = Some(e);
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow!("no start attempt made"))
            .context(format!(
                "private PostgreSQL did not start after {START_ATTEMPTS} attempts"
            )))
    }

    /// Runs a PostgreSQL tool (as the `postgres` OS user when root), output to a file in the
    /// cluster directory; on failure the error includes that output.
    async fn run(&self, program: &Path, args: &[&str], out_name: &str) -> Result<()> {
        let out_path = self.dir.path().join(out_name);
        let out = std::fs::File::create(&out_path).context("creating an output file")?;
        let err = out.try_clone().context("duplicating a file handle")?;
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut cmd = tokio::process::Command::new(runuser());
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => tokio::process::Command::new(program),
        };
        let status = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .await
            .with_context(|| format!("running {}", program.display()))?;
        if !status.success() {
            bail!(
                "{} {} failed ({status}):\n{}",
                program.display(),
                args.first().copied().unwrap_or_default(),
                file_tail(&out_path, 20)
            );
        }
        Ok(())
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Password of the `postgres` superuser.
    pub fn superuser_password(&self) -> String {
        self.password.clone()
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/postgres`
    pub fn admin_url(&self) -> String {
        self.url_for("postgres", &self.password, "postgres")
    }

    /// URL for `user` with `password` on `database` (user and password percent-encoded).
    pub fn url_for(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            percent_encode(user),
            percent_encode(password),
            self.port,
            percent_encode(database)
        )
    }

    /// Connection URL template for OpenBao's database engine:
    /// `postgresql://{{username}}:{{password}}@127.0.0.1:<port>/postgres?sslmode=disable`.
    pub fn vault_connection_url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Directory of the Unix socket (and the cluster's files).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are closed), keeping its data
    /// and port, to take the database away from a running service.
    pub async fn stop(&self) -> Result<()> {
        let data_arg = self.data_dir.to_string_lossy().into_owned();
        self.run(
            &self.bin_dir.join("pg_ctl"),
            &["stop", "-D", &data_arg, "-m", "fast", "-w", "-t", "30"],
            "pg_ctl-stop.out",
        )
        .await
    }

    /// Starts the server again after [`PrivatePostgres::stop`], on the same port.
    pub async fn resume(&self) -> Result<()> {
        let data_arg = self.data_dir.to_string_lossy().into_owned();
        let log_arg = self
            .dir
            .path()
            .join(SERVER_LOG)
            .to_string_lossy()
            .into_owned();
        let options = format!("-p {}", self.port);
        self.run(
            &self.bin_dir.join("pg_ctl"),
            &[
                "start", "-D", &data_arg, "-l", &log_arg, "-w", "-t", "30", "-o", &options,
            ],
            "pg_ctl-start.out",
        )
        .await
    }

    /// Last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        file_tail(&self.dir.path().join(SERVER_LOG), lines)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.port != 0 {
            stop_cluster(&self.bin_dir, self.run_as, &self.data_dir);
        }
    }
}

/// `pg_ctl stop -m immediate`, synchronously. Best effort.
fn stop_cluster(bin_dir: &Path, run_as: Option<&str>, data_dir: &Path) {
    let pg_ctl = bin_dir.join("pg_ctl");
    let mut cmd = match run_as {
        Some(user) => {
            let mut cmd = std::process::Command::new(runuser());
            cmd.args(["-u", user, "--"]).arg(&pg_ctl);
            cmd
        }
        None => std::process::Command::new(&pg_ctl),
    };
    let _ = cmd
        .args(["stop", "-m", "immediate", "-w", "-t", "10", "-D"])
        .arg(data_dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops and deletes clusters left behind by test processes that died without dropping them
/// (after a grace period: an `initdb` the dead test started may still be running).
fn sweep_orphans(bin_dir: &Path, run_as: Option<&str>) {
    for dir in orphaned_fixture_dirs(DIR_PREFIX, Duration::from_secs(30)) {
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            stop_cluster(bin_dir, run_as, &data);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn running_as_root() -> Result<bool> {
    // The owner of /proc/self is the process's effective uid.
    Ok(std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0)
}

/// uid and gid of `user` from /etc/passwd.
fn lookup_user(user: &str) -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            (name == user).then_some((uid, gid))
        })
        .next()
        .ok_or_else(|| {
            anyhow!("no OS user {user:?}: running as root, the private cluster must run as {user}")
        })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn runuser() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("appending to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_in_passwd() {
        assert_eq!(lookup_user("root").unwrap(), (0, 0));
        assert!(lookup_user("no-such-user-gha").is_err());
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
