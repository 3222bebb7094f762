//! Zero-copy CEL view of events and processes.
//!
//! Converting an event into CEL maps cost ~40 us (two deep copies: model -> `cel::Value`
//! -> `dyn Val`), more than most rules. Instead the condition reads the model structs in
//! place: [`Obj`] implements CEL's `Val` + `Indexer`, and a field is materialised only when
//! a condition selects it (strings are borrowed, not copied). The shape is the event JSON
//! contract's, plus derived fields: `process.name` (basename of exe), `process.cmdline`
//! (argv joined by spaces), `file.name`, `file.setuid`/`setgid`/`executable` (from `mode`,
//! CEL having no bit operators), `cred.*.cap_count`, and the `session` object.

use crate::values::{basename, Session};
use causeway_model::{
    Bpf, Container, Cred, Creds, Endpoint, Event, Exec, Exit, File, Host, Memfd, Module, Mount,
    Network, Process, Target,
};
use cel::common::traits::Indexer;
use cel::common::types::{CelBool, CelInt, CelList, CelNull, CelString, Type, MAP_TYPE};
use cel::common::value::{CowVal, Val};
use cel::ExecutionError;

static OBJ_TYPE: Type = MAP_TYPE;

/// A process with what rules derive from it, computed once per event.
#[derive(Debug)]
pub struct ProcCtx<'a> {
    pub p: &'a Process,
    pub cmdline: String,
    pub argv: CelList<'a>,
}

impl<'a> ProcCtx<'a> {
    pub fn new(p: &'a Process) -> Self {
        let items: Vec<Box<dyn Val + 'a>> = p
            .argv
            .iter()
            .map(|a| Box::new(CelString::from(a.as_str())) as Box<dyn Val + 'a>)
            .collect();
        ProcCtx {
            p,
            cmdline: p.argv.join(" "),
            argv: CelList::from(items),
        }
    }
}

/// One object of the event tree, read lazily.
#[derive(Debug, Clone, Copy)]
pub enum Obj<'a> {
    Event(&'a Event, &'a ProcCtx<'a>),
    Process(&'a ProcCtx<'a>),
    Host(&'a Host),
    Container(&'a Container),
    Exec(&'a Exec),
    Exit(&'a Exit),
    Network(&'a Network),
    Endpoint(&'a Endpoint),
    File(&'a File),
    Cred(&'a Cred),
    Creds(&'a Creds),
    Target(&'a Target),
    Mount(&'a Mount),
    Module(&'a Module),
    Bpf(&'a Bpf),
    Memfd(&'a Memfd),
    Session(&'a Session),
}

type R<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn own<'b, 'v>(v: impl Val + 'v) -> R<'b, 'v> {
    Ok(CowVal::Owned(Box::new(v)))
}
fn s<'b, 'v>(x: &'v str) -> R<'b, 'v> {
    own(CelString::from(x))
}
fn i<'b, 'v>(x: impl Into<i64>) -> R<'b, 'v> {
    own(CelInt::from(x.into()))
}
fn b<'b, 'v>(x: bool) -> R<'b, 'v> {
    own(CelBool::from(x))
}
fn null<'b, 'v>() -> R<'b, 'v> {
    own(CelNull)
}
fn os<'b, 'v>(x: Option<&'v str>) -> R<'b, 'v> {
    x.map_or_else(null, s)
}
fn oi<'b, 'v, T: Into<i64>>(x: Option<T>) -> R<'b, 'v> {
    x.map_or_else(null, i)
}
fn oo<'b, 'v, T>(x: Option<&'v T>, f: impl FnOnce(&'v T) -> Obj<'v>) -> R<'b, 'v> {
    x.map_or_else(null, |v| own(f(v)))
}

impl<'a> Obj<'a> {
    fn field<'b>(&self, k: &str) -> R<'b, 'a>
    where
        'a: 'b,
    {
        let missing = || Err(ExecutionError::no_such_key(k));
        match *self {
            Obj::Event(e, pc) => match k {
                "time" => own(CelString::from(e.time.to_rfc3339())),
                "kind" => s(e.kind.as_str()),
                "host" => own(Obj::Host(&e.host)),
                "process" => own(Obj::Process(pc)),
                "exec" => oo(e.exec.as_ref(), Obj::Exec),
                "exit" => oo(e.exit.as_ref(), Obj::Exit),
                "network" => oo(e.network.as_ref(), Obj::Network),
                "file" => oo(e.file.as_ref(), Obj::File),
                "cred" => oo(e.cred.as_ref(), Obj::Cred),
                "target" => oo(e.target.as_ref(), Obj::Target),
                "mount" => oo(e.mount.as_ref(), Obj::Mount),
                "module" => oo(e.module.as_ref(), Obj::Module),
                "bpf" => oo(e.bpf.as_ref(), Obj::Bpf),
                "memfd" => oo(e.memfd.as_ref(), Obj::Memfd),
                _ => missing(),
            },
            Obj::Process(pc) => {
                let p = pc.p;
                match k {
                    "id" => s(&p.id),
                    "pid" => i(p.pid),
                    "ppid" => i(p.ppid),
                    "parent_id" => s(&p.parent_id),
                    "exe" => s(&p.exe),
                    "name" => s(basename(&p.exe)),
                    "argv" => Ok(CowVal::Borrowed(&pc.argv)),
                    "cmdline" => s(&pc.cmdline),
                    "argv_truncated" => b(p.argv_truncated),
                    "cwd" => s(&p.cwd),
                    "comm" => s(&p.comm),
                    "uid" => i(p.uid),
                    "euid" => i(p.euid),
                    "gid" => i(p.gid),
                    "egid" => i(p.egid),
                    "auid" => oi(p.auid),
                    "session" => oi(p.session),
                    "tty" => os(p.tty.as_deref()),
                    "start_time" => p
                        .start_time
                        .map_or_else(null, |t| own(CelString::from(t.to_rfc3339()))),
                    "container" => oo(p.container.as_ref(), Obj::Container),
                    "service" => os(p.service.as_deref()),
                    _ => missing(),
                }
            }
            Obj::Host(h) => match k {
                "name" => s(&h.name),
                "id" => s(&h.id),
                _ => missing(),
            },
            Obj::Container(c) => match k {
                "id" => s(&c.id),
                "runtime" => s(&c.runtime),
                "pod_uid" => os(c.pod_uid.as_deref()),
                "cgroup" => os(c.cgroup.as_deref()),
                _ => missing(),
            },
            Obj::Exec(x) => match k {
                "filename" => s(&x.filename),
                "memfd" => b(x.memfd),
                "deleted" => b(x.deleted),
                "setid" => b(x.setid),
                "snapshot" => b(x.snapshot),
                _ => missing(),
            },
            Obj::Exit(x) => match k {
                "code" => oi(x.code),
                "signal" => oi(x.signal),
                "core_dumped" => b(x.core_dumped),
                _ => missing(),
            },
            Obj::Network(n) => match k {
                "protocol" => s(&n.protocol),
                "family" => s(&n.family),
                "local" => own(Obj::Endpoint(&n.local)),
                "remote" => own(Obj::Endpoint(&n.remote)),
                "in_progress" => b(n.in_progress),
                _ => missing(),
            },
            Obj::Endpoint(x) => match k {
                "ip" => s(&x.ip),
                "port" => i(x.port),
                _ => missing(),
            },
            Obj::File(f) => {
                let mode = f.mode.unwrap_or(0);
                match k {
                    "path" => s(&f.path),
                    "name" => s(basename(&f.path)),
                    "new_path" => os(f.new_path.as_deref()),
                    "flags" => oi(f.flags),
                    "write" => b(f.write),
                    "sensitive" => b(f.sensitive),
                    "mode" => oi(f.mode),
                    "inode" => f.inode.map_or_else(null, |x| i(x as i64)),
                    "truncated" => b(f.truncated),
                    "setuid" => b(mode & 0o4000 != 0),
                    "setgid" => b(mode & 0o2000 != 0),
                    "executable" => b(mode & 0o111 != 0),
                    _ => missing(),
                }
            }
            Obj::Cred(c) => match k {
                "syscall" => s(&c.syscall),
                "old" => own(Obj::Creds(&c.old)),
                "new" => own(Obj::Creds(&c.new)),
                _ => missing(),
            },
            Obj::Creds(c) => match k {
                "uid" => i(c.uid),
                "euid" => i(c.euid),
                "suid" => i(c.suid),
                "fsuid" => i(c.fsuid),
                "gid" => i(c.gid),
                "egid" => i(c.egid),
                "sgid" => i(c.sgid),
                "fsgid" => i(c.fsgid),
                "cap_effective" => i(c.cap_effective as i64),
                "cap_count" => i(c.cap_effective.count_ones()),
                _ => missing(),
            },
            Obj::Target(t) => match k {
                "pid" => i(t.pid),
                "id" => s(&t.id),
                "request" => s(&t.request),
                _ => missing(),
            },
            Obj::Mount(m) => match k {
                "source" => s(&m.source),
                "target" => s(&m.target),
                "fstype" => s(&m.fstype),
                "flags" => i(m.flags as i64),
                "result" => i(m.result),
                _ => missing(),
            },
            Obj::Module(m) => match k {
                "syscall" => s(&m.syscall),
                "path" => os(m.path.as_deref()),
                "result" => i(m.result),
                _ => missing(),
            },
            Obj::Bpf(x) => match k {
                "prog_type" => i(x.prog_type),
                "prog_name" => s(&x.prog_name),
                "result" => i(x.result),
                _ => missing(),
            },
            Obj::Memfd(x) => match k {
                "name" => s(&x.name),
                "flags" => i(x.flags),
                "result" => i(x.result),
                _ => missing(),
            },
            Obj::Session(x) => match k {
                "id" => oi(x.id),
                "tty" => os(x.tty.as_deref()),
                "user" => oi(x.user),
                "entry_id" => s(&x.entry_id),
                "entry_exe" => s(&x.entry_exe),
                "entry_name" => s(basename(&x.entry_exe)),
                "interactive" => b(x.interactive),
                "privileged" => b(x.privileged),
                _ => missing(),
            },
        }
    }
}

impl<'a> Val for Obj<'a> {
    fn get_type(&self) -> &Type {
        &OBJ_TYPE
    }

    fn cel_type() -> &'static Type
    where
        Self: Sized,
    {
        &OBJ_TYPE
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(*self)
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }
}

impl<'a> Indexer for Obj<'a> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        match idx.downcast_ref::<CelString>() {
            Some(k) => self.field(k.inner()),
            None => Err(ExecutionError::no_such_key("non-string key")),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}
