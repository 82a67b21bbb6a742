//! configgrpc's server side, shared by the receivers that serve gRPC (`otlp`, `jaeger`): the
//! `protocols.grpc` section with otelcol's keys, HTTP/2 connections with its stream limit,
//! keep-alive and connection lifetimes, and the answers a call gets before its method runs
//! (request metadata over the limit, `auth`), as grpc-go gives them; and a call's message
//! taken from the body budget and inflated before tonic reads it ([`message`]).

mod client;
mod config;
pub mod message;
mod serve;

pub use client::client_metadata;
pub use config::{
    DefaultEndpoint, GrpcConfig, KeepaliveConfig, KeepaliveEnforcementPolicy,
    KeepaliveServerParameters, DEFAULT_MAX_HEADER_LIST_SIZE_KIB, DEFAULT_MAX_RECV_MSG_SIZE_MIB,
};
pub use serve::{
    admit, header_list_size, metadata_over_limit, refusal, size_limit_as_resource_exhausted,
    unknown_method, GrpcProtocol,
};
