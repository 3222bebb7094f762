//! The graph's vocabulary: node and edge kinds, runs (reduced edges), node payloads and the
//! string interner. Everything is indexed by `u32` so a node or run costs a few words.

use causeway_model::Process;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::Arc;

/// Index of a node in the graph.
pub type NodeId = u32;
/// Index of a run (a reduced edge) in the graph.
pub type RunId = u32;
/// Index of an interned string.
pub type Sym = u32;

/// What an entity node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Host,
    /// One exec image of one process.
    Process,
    Container,
    File,
    /// A network peer or socket we did not see the other side of (remote server, remote
    /// client, listening socket).
    Flow,
    /// An interactive login session.
    Session,
}

/// What an edge means. Every edge points from cause to effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Parent image -> child's first image (fork).
    Spawned,
    /// Previous image -> new image of the same process (exec).
    Executed,
    /// The image file -> the image loaded from it.
    ExecutedFile,
    /// Writer image -> image executed from a file that writer wrote (dropper chains).
    ExecutedFileWrittenBy,
    /// Client image -> server image (mirrored connect/accept), or to/from an unseen peer.
    Connected,
    Wrote,
    Read,
    /// Process -> new path of a rename.
    Renamed,
    /// Old path -> new path: the content moved.
    RenamedTo,
    Unlinked,
    Chmod,
    /// Tracer image -> traced image.
    Ptraced,
    /// Self-edge of an image whose credentials changed.
    ChangedCredentials,
    /// Process -> listening socket.
    ListenedOn,
}

impl NodeKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Host => "host",
            NodeKind::Process => "process",
            NodeKind::Container => "container",
            NodeKind::File => "file",
            NodeKind::Flow => "flow",
            NodeKind::Session => "session",
        }
    }
}

impl EdgeKind {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Spawned => "spawned",
            EdgeKind::Executed => "executed",
            EdgeKind::ExecutedFile => "executed_file",
            EdgeKind::ExecutedFileWrittenBy => "executed_file_written_by",
            EdgeKind::Connected => "connected",
            EdgeKind::Wrote => "wrote",
            EdgeKind::Read => "read",
            EdgeKind::Renamed => "renamed",
            EdgeKind::RenamedTo => "renamed_to",
            EdgeKind::Unlinked => "unlinked",
            EdgeKind::Chmod => "chmod",
            EdgeKind::Ptraced => "ptraced",
            EdgeKind::ChangedCredentials => "changed_credentials",
            EdgeKind::ListenedOn => "listened_on",
        }
    }

    /// Process lineage (ancestors / descendants) uses only these.
    pub fn is_lineage(self) -> bool {
        matches!(self, EdgeKind::Spawned | EdgeKind::Executed)
    }
}

/// A reduced edge: `count` occurrences of `src -> dst` between `first` and `last` (ns since the
/// epoch) that the reduction proved interchangeable for every trace. `count == 0` marks a
/// conservative split created by a too-late event (see `build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub src: NodeId,
    pub dst: NodeId,
    pub kind: EdgeKind,
    pub first: i64,
    pub last: i64,
    /// Every occurrence but the last is at or before `prev` (an upper bound; `prev == last`
    /// means nothing is known). Lets a later tie or late edge peel the last occurrence off
    /// exactly instead of splitting conservatively.
    pub prev: i64,
    pub count: u32,
}

/// A process image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The process as reported by the event that created the image (shared with that event
    /// and the process index: no copy per image).
    pub process: Arc<Process>,
    /// When the image began (exec time, or fork / first sight).
    pub start: i64,
    /// When the process exited, if seen.
    pub exit: Option<i64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub host: NodeId,
    pub session: Option<NodeId>,
    pub container: Option<NodeId>,
}

/// Which unseen peer a flow node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowRole {
    /// A server we connected to but whose accept we did not see.
    RemoteServer,
    /// A client (address only) whose connect we did not see.
    RemoteClient,
    /// A listening socket on a host.
    Listen,
}

/// Node payload.
#[derive(Debug, Clone)]
pub enum NodeData {
    Host {
        id: Sym,
        name: Sym,
    },
    Process(Box<Image>),
    Container {
        id: Sym,
        runtime: Sym,
    },
    File {
        host: NodeId,
        /// Container runtime id (interned), `u32::MAX` for the host's own filesystem.
        container: Sym,
        path: Sym,
    },
    Flow {
        role: FlowRole,
        /// Host node for listening sockets, `u32::MAX` otherwise.
        host: NodeId,
        protocol: Sym,
        ip: Sym,
        port: u16,
    },
    Session {
        host: NodeId,
        /// Audit session id, or `None` for a tty login found by the heuristic.
        audit: Option<u32>,
        auid: Option<u32>,
        tty: Option<Sym>,
        /// Earliest image known to belong to the session.
        root: Option<NodeId>,
    },
}

/// A node with its adjacency. `last_in` / `last_out` are the latest occurrence times of any
/// edge into / out of the node: what the reduction's merge test needs.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: NodeData,
    pub ins: Vec<RunId>,
    pub outs: Vec<RunId>,
    pub last_in: i64,
    pub last_out: i64,
}

impl Node {
    pub fn new(data: NodeData) -> Self {
        Node {
            data,
            ins: Vec::new(),
            outs: Vec::new(),
            last_in: i64::MIN,
            last_out: i64::MIN,
        }
    }

    pub fn kind(&self) -> NodeKind {
        match self.data {
            NodeData::Host { .. } => NodeKind::Host,
            NodeData::Process(_) => NodeKind::Process,
            NodeData::Container { .. } => NodeKind::Container,
            NodeData::File { .. } => NodeKind::File,
            NodeData::Flow { .. } => NodeKind::Flow,
            NodeData::Session { .. } => NodeKind::Session,
        }
    }
}

/// String interner: each distinct string is stored once.
#[derive(Debug, Default)]
pub struct Interner {
    map: FxHashMap<Box<str>, Sym>,
    strs: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        let id = self.strs.len() as Sym;
        let b: Box<str> = s.into();
        self.strs.push(b.clone());
        self.map.insert(b, id);
        id
    }

    pub fn get(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    pub fn resolve(&self, id: Sym) -> &str {
        self.strs.get(id as usize).map(|b| &**b).unwrap_or("")
    }

    /// Bytes held (approximate: two copies of each string plus table overhead).
    pub fn heap_bytes(&self) -> usize {
        self.strs.iter().map(|s| 2 * s.len() + 40).sum()
    }
}
