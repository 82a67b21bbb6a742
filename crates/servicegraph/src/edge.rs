//! One request between two services while its spans are being paired.

use std::sync::Arc;

/// Where the two spans of a request meet: the trace, and the client span's id (a server span
/// finds it as its parent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PairKey {
    pub trace: [u8; 16],
    pub span: [u8; 8],
}

impl PairKey {
    /// Ids of another length than OTLP's are zero-padded or cut, so they still pair with
    /// themselves (pdata would have refused the request; the walker lets it through).
    pub(crate) fn new(trace: &[u8], span: &[u8]) -> Self {
        let mut k = PairKey {
            trace: [0; 16],
            span: [0; 8],
        };
        for (d, s) in k.trace.iter_mut().zip(trace) {
            *d = *s;
        }
        for (d, s) in k.span.iter_mut().zip(span) {
            *d = *s;
        }
        k
    }

    /// otelcol's `SpanIDIsEmpty`: a server span without parent (a root) has none.
    pub(crate) fn span_is_empty(&self) -> bool {
        self.span.iter().all(|b| *b == 0)
    }
}

/// otelcol's `connection_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum ConnType {
    #[default]
    Unset,
    MessagingSystem,
    Database,
    VirtualNode,
}

impl ConnType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConnType::Unset => "",
            ConnType::MessagingSystem => "messaging_system",
            ConnType::Database => "database",
            ConnType::VirtualNode => "virtual_node",
        }
    }
}

/// The `virtual_node` label (`virtual_node_extra_label: true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum VirtualNode {
    #[default]
    None,
    Client,
    Server,
}

impl VirtualNode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VirtualNode::None => "",
            VirtualNode::Client => "client",
            VirtualNode::Server => "server",
        }
    }
}

/// What one span says about its side of a request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Side {
    /// Shared with the other spans of its resource.
    pub service: Arc<str>,
    pub latency_s: f64,
    pub span_id: [u8; 8],
    /// `span_multiplier_key`'s value, already rounded.
    pub multiplier: Option<u64>,
    /// The integer adjusted count from the span's `tracestate`; `None` = 1.
    pub adjusted: Option<u64>,
}

impl Side {
    fn named(&self) -> bool {
        !self.service.is_empty()
    }
}

/// A request between two services: complete once both names are known.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    /// On the connector's clock; fixed when the edge is created, as otelcol's.
    pub expires_ms: u64,
    pub conn: ConnType,
    pub client: Option<Side>,
    pub server: Option<Side>,
    pub failed: bool,
    /// `client_<dim>` values then `server_<dim>` values, in `dimensions` order.
    pub dims: Box<[Option<Box<str>>]>,
    /// The highest-priority `virtual_node_peer_attributes` value seen on the client span:
    /// (index in the list, value).
    pub peer: Option<(usize, Box<str>)>,
    pub virtual_node: VirtualNode,
    /// For exemplars.
    pub trace: [u8; 16],
}

impl Edge {
    pub(crate) fn new(key: &PairKey, expires_ms: u64, n_dims: usize) -> Self {
        Self {
            expires_ms,
            conn: ConnType::Unset,
            client: None,
            server: None,
            failed: false,
            dims: vec![None; 2 * n_dims].into_boxed_slice(),
            peer: None,
            virtual_node: VirtualNode::None,
            trace: key.trace,
        }
    }

    /// otelcol's `isComplete`: both service names known and not empty.
    pub(crate) fn is_complete(&self) -> bool {
        self.client.as_ref().is_some_and(Side::named)
            && self.server.as_ref().is_some_and(Side::named)
    }

    pub(crate) fn client_name(&self) -> &str {
        self.client.as_ref().map_or("", |s| &s.service)
    }

    pub(crate) fn server_name(&self) -> &str {
        self.server.as_ref().map_or("", |s| &s.service)
    }

    /// How many requests the edge stands for: a `span_multiplier_key` value (server span's
    /// first), else the server span's adjusted count when there is a server span, else the
    /// client span's; 1 without sampling information.
    pub(crate) fn weight(&self) -> u64 {
        let (c, s) = (self.client.as_ref(), self.server.as_ref());
        if let Some(m) = s
            .and_then(|s| s.multiplier)
            .or(c.and_then(|c| c.multiplier))
        {
            return m;
        }
        match s.or(c) {
            Some(side) => side.adjusted.unwrap_or(1),
            None => 1,
        }
    }
}
