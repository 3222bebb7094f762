//! Heuristics, each small and named: address classes, protocol by port, datastores, and the
//! group a sensitive path belongs to (the agent's default sensitive set, crates/agent).

use std::net::IpAddr;

/// Where an address is, seen from a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    Loopback,
    /// RFC 1918, RFC 6598 (CGNAT), link-local, IPv6 ULA and link-local.
    Private,
    /// Everything else: the internet.
    Public,
    /// Wildcard (`0.0.0.0`, `::`), as a bind address.
    Unspecified,
    /// Not an IP address at all (the sensor never sends that; counted as private).
    Unparsed,
}

pub fn addr_class(ip: &str) -> AddrClass {
    let ip = causeway_index::flow::norm_ip(ip);
    let Ok(a) = ip.parse::<IpAddr>() else {
        return AddrClass::Unparsed;
    };
    if a.is_unspecified() {
        return AddrClass::Unspecified;
    }
    if a.is_loopback() {
        return AddrClass::Loopback;
    }
    let private = match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_private() || v.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    };
    if private {
        AddrClass::Private
    } else {
        AddrClass::Public
    }
}

/// Application protocol for a server port (the facts file §7 port table), in Threagile's
/// vocabulary; `unknown-protocol` when the port says nothing.
pub fn protocol_for_port(port: u16) -> &'static str {
    match port {
        80 | 8000 | 8008 | 8080 | 8081 | 8888 | 3000 | 5000 => "http",
        443 | 8443 | 6443 => "https",
        5432 | 3306 | 1433 | 1521 => "sql-access-protocol",
        27017 | 6379 | 9042 | 11211 => "nosql-access-protocol",
        389 => "ldap",
        636 => "ldaps",
        22 => "ssh",
        25 | 587 => "smtp",
        465 => "smtp-encrypted",
        993 => "imap-encrypted",
        2049 => "nfs",
        445 => "smb",
        1099 => "jrmp",
        5672 => "binary",
        5671 => "binary-encrypted",
        1883 => "mqtt",
        _ => "unknown-protocol",
    }
}

/// Does a protocol name (as [`protocol_for_port`] returns) mean encryption on the wire?
pub fn is_encrypted(protocol: &str) -> bool {
    matches!(protocol, "https" | "ldaps" | "ssh") || protocol.ends_with("-encrypted")
}

/// Ports of datastores: a workload listening there is inferred to be one.
pub fn is_datastore_port(port: u16) -> bool {
    matches!(
        port,
        5432 | 3306 | 1433 | 1521 | 27017 | 6379 | 9042 | 11211 | 9200 | 2379 | 5984
    )
}

/// Executable base names of datastores.
pub fn is_datastore_exe(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    matches!(
        base,
        "postgres" | "mysqld" | "mariadbd" | "redis-server" | "mongod" | "memcached" | "etcd"
    )
}

/// Interpreters whose identity is the script they run, not their own executable.
pub fn is_interpreter(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    let stem = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "python"
            | "node"
            | "ruby"
            | "perl"
            | "php"
            | "java"
            | "sh"
            | "bash"
            | "dash"
            | "deno"
            | "bun"
    )
}

/// Executables that open a login or shell session: a host workload's root is the process
/// right below one of them (or below init).
pub fn is_session(exe: &str) -> bool {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    matches!(
        base,
        "sshd"
            | "login"
            | "bash"
            | "sh"
            | "dash"
            | "zsh"
            | "fish"
            | "tmux"
            | "tmux: server"
            | "screen"
            | "su"
            | "sudo"
            | "systemd"
            | "init"
            | "agetty"
            | "cron"
            | "containerd-shim"
            | "containerd-shim-runc-v2"
            | "runc"
    )
}

/// The group a sensitive path belongs to, with its description.
pub fn sensitive_group(path: &str) -> (&'static str, &'static str) {
    let has = |s: &str| path.contains(s);
    if matches!(
        path,
        "/etc/shadow" | "/etc/shadow-" | "/etc/gshadow" | "/etc/gshadow-" | "/etc/security/opasswd"
    ) {
        ("os-credentials", "local account password hashes")
    } else if path.starts_with("/etc/sudoers") {
        ("sudo-policy", "sudo configuration")
    } else if path.starts_with("/etc/ssh/ssh_host_") || has("/.ssh/") || path.ends_with("/.ssh") {
        ("ssh-keys", "SSH private keys and authorized keys")
    } else if has("/.aws") || has("/.config/gcloud") || has("/.azure") {
        ("cloud-credentials", "cloud provider credentials")
    } else if has("/secrets/kubernetes.io/serviceaccount") {
        (
            "k8s-service-account-tokens",
            "Kubernetes service-account tokens",
        )
    } else if has("/.kube") {
        ("kubeconfig", "Kubernetes client credentials")
    } else if has("/.docker/config.json") {
        ("registry-credentials", "container registry credentials")
    } else if has("/.gnupg") {
        ("gpg-keys", "GnuPG keyrings")
    } else if path.ends_with("/.bash_history") {
        ("shell-history", "shell history (may hold secrets)")
    } else {
        ("other-sensitive", "other files in the sensitive set")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(addr_class("127.0.0.1"), AddrClass::Loopback);
        assert_eq!(addr_class("::ffff:10.1.2.3"), AddrClass::Private);
        assert_eq!(addr_class("100.64.0.1"), AddrClass::Private);
        assert_eq!(addr_class("fd00::1"), AddrClass::Private);
        assert_eq!(addr_class("0.0.0.0"), AddrClass::Unspecified);
        assert_eq!(addr_class("203.0.113.7"), AddrClass::Public);
        assert_eq!(
            sensitive_group("/root/.aws/credentials").0,
            "cloud-credentials"
        );
        assert_eq!(sensitive_group("/etc/shadow").0, "os-credentials");
        assert!(is_interpreter("/usr/bin/python3.11"));
        assert!(!is_interpreter("/usr/sbin/nginx"));
    }
}
