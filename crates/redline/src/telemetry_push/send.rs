//! One OTLP metrics export of Redline's own telemetry, over HTTP (`http/protobuf`) or gRPC,
//! with the settings of an otelcol `otlp` push exporter: URL, TLS files, headers, gzip,
//! per-request timeout.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::Uri;
use http_body_util::Full;
use prost::Message;
use redline_http_client::{ClientOptions, GrpcConnector, HttpClient, Proxy};
use redline_otlp_metrics_encode::proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use redline_otlp_metrics_encode::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::config::{OtlpCompression, OtlpProtocol, OtlpPushConfig};
use redline_pipeline::tls::TlsError;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

const USER_AGENT_VALUE: &str = concat!("Redline/", env!("CARGO_PKG_VERSION"));

pub struct OtlpSender {
    url: String,
    protocol: OtlpProtocol,
    gzip: bool,
    timeout: Duration,
    transport: Transport,
}

enum Transport {
    Http {
        // Boxed: the HTTP client is several times the size of the gRPC one.
        client: Box<HttpClient>,
        uri: Uri,
        headers: HeaderMap,
    },
    Grpc {
        client: MetricsServiceClient<Channel>,
        metadata: MetadataMap,
    },
}

impl OtlpSender {
    /// Builds the client; reads the TLS files now, so a bad one stops startup.
    pub fn new(config: &OtlpPushConfig) -> anyhow::Result<Self> {
        let tls = ClientTlsConfig {
            ca_file: config.certificate.clone(),
            cert_file: config.client_certificate.clone(),
            key_file: config.client_key.clone(),
            ..ClientTlsConfig::default()
        };
        let uri: Uri = config
            .url
            .parse()
            .with_context(|| format!("endpoint `{}`", config.url))?;
        let transport = match config.protocol {
            OtlpProtocol::HttpProtobuf => http_transport(config, &tls, uri)?,
            OtlpProtocol::Grpc => grpc_transport(config, &tls, &uri)?,
        };
        Ok(Self {
            url: config.url.clone(),
            protocol: config.protocol,
            gzip: config.compression == OtlpCompression::Gzip,
            timeout: config.timeout,
            transport,
        })
    }

    pub fn describe(&self) -> String {
        let protocol = match self.protocol {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        };
        format!("otlp {protocol} {}", self.url)
    }

    /// Sends one request. A partial success (data points the server rejected) is an error
    /// too, so it is logged.
    pub async fn send(&self, request: ExportMetricsServiceRequest) -> anyhow::Result<()> {
        let exchange = async {
            match &self.transport {
                Transport::Http {
                    client,
                    uri,
                    headers,
                } => self.post(client, uri, headers, &request).await,
                Transport::Grpc { client, metadata } => {
                    let mut call = tonic::Request::new(request);
                    *call.metadata_mut() = metadata.clone();
                    call.set_timeout(self.timeout);
                    let response = client
                        .clone()
                        .export(call)
                        .await
                        .map_err(|s| anyhow!("gRPC {:?}: {}", s.code(), s.message()))?;
                    Ok(response.into_inner())
                }
            }
        };
        let response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| anyhow!("no answer within {:?}", self.timeout))??;
        match response.partial_success {
            Some(p) if p.rejected_data_points > 0 => Err(anyhow!(
                "the server rejected {} data point(s): {}",
                p.rejected_data_points,
                p.error_message
            )),
            _ => Ok(()),
        }
    }

    async fn post(
        &self,
        client: &HttpClient,
        uri: &Uri,
        headers: &HeaderMap,
        request: &ExportMetricsServiceRequest,
    ) -> anyhow::Result<ExportMetricsServiceResponse> {
        let mut body = request.encode_to_vec();
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&body).context("compressing")?;
            body = gz.finish().context("compressing")?;
        }
        let mut req = client.post(uri, headers, Full::new(Bytes::from(body)));
        let h = req.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        if self.gzip {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        // No timeout of its own: `send` bounds the whole exchange, gRPC's as well.
        let answer = client.send(req, None).await?;
        if !answer.status.is_success() {
            return Err(anyhow!("HTTP {}: {}", answer.status, answer.text()));
        }
        // An empty body is a full success; a body that is not a response says nothing.
        Ok(ExportMetricsServiceResponse::decode(answer.body).unwrap_or_default())
    }
}

fn tls_error(e: TlsError) -> anyhow::Error {
    // The TLS keys are otelcol's `tls` names; this exporter calls them differently.
    let key = match e.key {
        "ca_file" => "certificate",
        "cert_file" => "client_certificate",
        "key_file" => "client_key",
        other => other,
    };
    anyhow!("{key}: {}", e.reason)
}

fn http_transport(
    config: &OtlpPushConfig,
    tls: &ClientTlsConfig,
    uri: Uri,
) -> anyhow::Result<Transport> {
    let options = ClientOptions {
        https: config.tls,
        user_agent: HeaderValue::from_static(USER_AGENT_VALUE),
        // As the SDK's exporter, through Go's default transport: the proxy of the environment.
        proxy: Proxy::from_env(),
        ..ClientOptions::default()
    };
    let client = HttpClient::new(tls, options).map_err(tls_error)?;
    let mut headers = HeaderMap::with_capacity(config.headers.len());
    for (name, value) in &config.headers {
        let key = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("headers: `{name}` is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value.expose())
            .map_err(|_| anyhow!("headers: the value of `{name}` must be visible ASCII"))?;
        value.set_sensitive(true);
        headers.insert(key, value);
    }
    Ok(Transport::Http {
        client: Box::new(client),
        uri,
        headers,
    })
}

fn grpc_transport(
    config: &OtlpPushConfig,
    tls: &ClientTlsConfig,
    uri: &Uri,
) -> anyhow::Result<Transport> {
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow!("endpoint `{}` has no host", config.url))?;
    // With TLS the connector makes every connection TLS: the channel is built on `http://`,
    // with an `https` origin for its requests.
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .with_context(|| format!("endpoint `{}`", config.url))?
        .user_agent(USER_AGENT_VALUE)
        .context("user agent")?
        .connect_timeout(config.timeout);
    let scheme = if config.tls { "https" } else { "http" };
    let origin = format!("{scheme}://{authority}")
        .parse::<Uri>()
        .with_context(|| format!("endpoint `{}`", config.url))?;
    // The SDK's gRPC exporter connects through HTTPS_PROXY as grpc-go does.
    let connector =
        GrpcConnector::new(config.tls.then_some(tls), Proxy::from_env()).map_err(tls_error)?;
    let channel = endpoint
        .origin(origin)
        .connect_with_connector_lazy(connector);
    let mut metadata = MetadataMap::with_capacity(config.headers.len());
    for (name, value) in &config.headers {
        let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("headers: `{name}` is not a valid gRPC metadata key"))?;
        let value = MetadataValue::try_from(value.expose())
            .map_err(|_| anyhow!("headers: the value of `{name}` must be visible ASCII"))?;
        metadata.insert(key, value);
    }
    let mut client = MetricsServiceClient::new(channel);
    if config.compression == OtlpCompression::Gzip {
        client = client.send_compressed(CompressionEncoding::Gzip);
    }
    Ok(Transport::Grpc { client, metadata })
}
