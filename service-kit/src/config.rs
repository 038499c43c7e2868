//! Layered configuration: defaults < optional TOML file < environment variables < command line.
//!
//! Each service declares one `clap` struct. Its defaults and environment variable names live
//! on the fields, so `--help` is always the complete, current list of settings. A file named by
//! `--config` (or the service's `*_CONFIG` variable) supplies values that replace the defaults
//! and are themselves replaced by the environment; its keys are the option names
//! (`database-url = "..."` or `database_url = "..."`).

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser};
use ipnet::IpNet;
use secrecy::SecretString;

/// Where the event store lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://wardline:wardline@127.0.0.1:5432/wardline",
        hide_default_value = true,
        hide_env_values = true
    )]
    pub database_url: SecretString,
    /// Most connections this service holds open.
    #[arg(
        id = "database_max_connections",
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 32
    )]
    pub database_max_connections: u32,
}

/// Where NATS JetStream is, and the stream the events go to.
#[derive(Debug, Clone, Args)]
pub struct NatsSettings {
    /// NATS server URL.
    #[arg(
        id = "nats_url",
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// JetStream stream that carries the FHIR events.
    #[arg(
        id = "events_stream",
        long = "events-stream",
        env = "FHIR_EVENTS_STREAM",
        default_value = "FHIR_EVENTS"
    )]
    pub events_stream: String,
    /// Subject prefix of the events: `<prefix>.<ResourceType>`.
    #[arg(
        id = "events_subject_prefix",
        long = "events-subject-prefix",
        env = "FHIR_EVENTS_SUBJECT_PREFIX",
        default_value = "fhir.events"
    )]
    pub events_subject_prefix: String,
}

/// Where Redis is.
#[derive(Debug, Clone, Args)]
pub struct RedisSettings {
    /// Redis URL.
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,
}

/// How the service logs.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log line format: `json` (one structured object per line) or `pretty`.
    #[arg(id = "log_format", long = "log-format", env = "LOG_FORMAT", default_value = "json", value_parser = ["json", "pretty"])]
    pub log_format: String,
    /// Log filter, in `tracing` `EnvFilter` syntax.
    #[arg(
        id = "log_filter",
        long = "log-filter",
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,async_nats=warn"
    )]
    pub log_filter: String,
}

/// How the HTTP server treats its connections.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Longest a client may take to send a request's line and headers, in milliseconds; its
    /// connection is closed past it (a client that sends them slowly would otherwise hold a
    /// connection for ever).
    #[arg(
        id = "header_read_timeout_ms",
        long = "header-read-timeout-ms",
        env = "HTTP_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,
}

/// Which peers' forwarding headers (`X-Forwarded-For`) are believed.
#[derive(Debug, Clone, Args)]
pub struct ProxySettings {
    /// Proxies (addresses or CIDR blocks, comma-separated) whose `X-Forwarded-For` is believed.
    /// The client address recorded is the right-most one in that header that is not such a
    /// proxy; what any other peer claims is ignored.
    #[arg(
        id = "trusted_proxies",
        long = "trusted-proxies",
        env = "TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_network,
        default_value = "127.0.0.0/8,::1"
    )]
    pub trusted_proxies: Vec<IpNet>,
}

/// An address (`10.0.0.7`, a block of one) or a CIDR block (`10.0.0.0/8`).
pub(crate) fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{text}' is neither an IP address nor a CIDR block"))
}

/// Where the links a service writes (`Location`, `fullUrl`, paging links) point.
#[derive(Debug, Clone, Args)]
pub struct PublicUrlSettings {
    /// Base URL of the FHIR API as clients see it, for `Location` headers, `fullUrl`s and links.
    /// Without it, the base is taken from each request's `Host` (and `X-Forwarded-Proto`) when
    /// that host is one of --allowed-hosts, and is http://localhost:8080/fhir otherwise.
    #[arg(id = "fhir_base_url", long = "fhir-base-url", env = "FHIR_BASE_URL")]
    pub fhir_base_url: Option<String>,
    /// Hosts (comma-separated, any port) a request's `Host` header may name for links to be
    /// built from it, when --fhir-base-url is not set; any other host gets the default base, so
    /// a forged `Host` never reaches a response.
    #[arg(
        id = "allowed_hosts",
        long = "allowed-hosts",
        env = "FHIR_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,[::1]"
    )]
    pub allowed_hosts: Vec<String>,
}

/// Loads `T` from the process's arguments and environment, and the file `--config` names.
/// Prints help or the error and exits on `--help` or a bad value, like any `clap` program.
pub fn load<T: Parser>() -> T {
    match load_from::<T>(std::env::args_os()) {
        Ok(settings) => settings,
        Err(error) => match error.downcast::<clap::Error>() {
            Ok(clap_error) => clap_error.exit(),
            Err(other) => {
                eprintln!("error: {other:#}");
                std::process::exit(2);
            }
        },
    }
}

/// `load` with the arguments given, for tests.
pub fn load_from<T: Parser>(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<T> {
    let args: Vec<OsString> = args.into_iter().collect();
    let mut command = T::command();
    let has_config = command.get_arguments().any(|arg| arg.get_id() == "config");
    if has_config {
        let first_pass = command
            .clone()
            .ignore_errors(true)
            .try_get_matches_from(&args)?;
        if let Ok(Some(path)) = first_pass.try_get_one::<PathBuf>("config") {
            for (key, value) in read_file(path)? {
                if !command
                    .get_arguments()
                    .any(|arg| arg.get_id() == key.as_str())
                {
                    bail!("{}: unknown setting '{key}'", path.display());
                }
                command = command.mut_arg(key, |arg| arg.default_value(value));
            }
        }
    }
    let matches = command.try_get_matches_from(&args)?;
    Ok(T::from_arg_matches(&matches)?)
}

fn read_file(path: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => bail!(
                    "{}: '{key}' must be a string, number or boolean, not {other}",
                    path.display()
                ),
            };
            Ok((key.replace('-', "_"), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::io::Write;

    #[derive(Debug, Parser)]
    struct Example {
        #[arg(long, env = "SERVICE_KIT_TEST_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, env = "SERVICE_KIT_TEST_PORT", default_value_t = 1)]
        port: u16,
        #[arg(long, env = "SERVICE_KIT_TEST_NAME", default_value = "default")]
        name: String,
        #[command(flatten)]
        database: DatabaseSettings,
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("example")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn layers_defaults_file_and_command_line() {
        let defaults: Example = load_from(args(&[])).unwrap();
        assert_eq!(defaults.port, 1);
        assert_eq!(defaults.name, "default");

        let mut file = tempfile_in_target();
        writeln!(
            file.1,
            "port = 7\nname = \"from-file\"\ndatabase-url = \"postgres://x/y\""
        )
        .unwrap();
        let path = file.0.to_str().unwrap().to_owned();
        let from_file: Example = load_from(args(&["--config", &path])).unwrap();
        assert_eq!(from_file.port, 7);
        assert_eq!(from_file.name, "from-file");
        // The environment beats the file: where DATABASE_URL is set (as under ./deploy/dev
        // test), it wins over the file's value.
        let expected =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://x/y".to_owned());
        assert_eq!(from_file.database.database_url.expose_secret(), expected);

        let overridden: Example = load_from(args(&["--config", &path, "--port", "9"])).unwrap();
        assert_eq!(overridden.port, 9, "the command line beats the file");
        assert_eq!(overridden.name, "from-file");
        std::fs::remove_file(&file.0).unwrap();
    }

    #[test]
    fn rejects_unknown_keys_in_the_file() {
        let mut file = tempfile_in_target();
        writeln!(file.1, "colour = \"blue\"").unwrap();
        let path = file.0.to_str().unwrap().to_owned();
        let error = load_from::<Example>(args(&["--config", &path])).unwrap_err();
        assert!(
            error.to_string().contains("unknown setting 'colour'"),
            "{error}"
        );
        std::fs::remove_file(&file.0).unwrap();
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        let settings: Example =
            load_from(args(&["--database-url", "postgres://u:hunter2@h/d"])).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[derive(Debug, Parser)]
    struct WithLists {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        proxies: ProxySettings,
        #[command(flatten)]
        public_url: PublicUrlSettings,
    }

    #[test]
    fn lists_split_on_commas_from_every_layer() {
        let defaults: WithLists = load_from(args(&[])).unwrap();
        let loopback: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        if std::env::var_os("TRUSTED_PROXIES").is_none() {
            assert_eq!(defaults.proxies.trusted_proxies, loopback);
        }
        if std::env::var_os("FHIR_ALLOWED_HOSTS").is_none() {
            assert_eq!(
                defaults.public_url.allowed_hosts,
                ["localhost", "127.0.0.1", "[::1]"]
            );
        }
        let given: WithLists =
            load_from(args(&["--trusted-proxies", "10.0.0.0/8, 192.168.1.7"])).unwrap();
        assert_eq!(
            given.proxies.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.168.1.7/32".parse().unwrap()
            ]
        );
        let mut file = tempfile_in_target();
        writeln!(file.1, "allowed-hosts = \"fhir.example.org,localhost\"").unwrap();
        let path = file.0.to_str().unwrap().to_owned();
        let from_file: WithLists = load_from(args(&["--config", &path])).unwrap();
        if std::env::var_os("FHIR_ALLOWED_HOSTS").is_none() {
            assert_eq!(
                from_file.public_url.allowed_hosts,
                ["fhir.example.org", "localhost"]
            );
        }
        std::fs::remove_file(&file.0).unwrap();
        assert!(load_from::<WithLists>(args(&["--trusted-proxies", "nonsense"])).is_err());
    }

    fn tempfile_in_target() -> (PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("service-kit-{}.toml", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&path).unwrap();
        (path, file)
    }
}
