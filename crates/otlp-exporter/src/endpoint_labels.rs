//! The labels otelcol puts on an exporter's sent and failed counters to say where it sends
//! (`server_address`, `server_port`, and `url_path` for OTLP/HTTP), derived from the endpoint
//! as otelcol's exporters derive them, so per-endpoint queries and dashboards match.

type Labels = Vec<(&'static str, String)>;

/// The `otlp` exporter's: the endpoint as written, split as Go's `net.SplitHostPort` splits
/// it. When that fails (a scheme, `dns:///`, no port) the whole endpoint is the address.
pub(crate) fn grpc(endpoint: &str) -> Labels {
    match split_host_port(endpoint) {
        Some((host, port)) => {
            let mut labels = vec![("server_address", host.to_owned())];
            if let Ok(port) = port.parse::<i64>() {
                labels.push(("server_port", port.to_string()));
            }
            labels
        }
        None => vec![("server_address", endpoint.to_owned())],
    }
}

/// The `otlphttp` exporter's, for one signal's URL: its host name, its port when the URL
/// gives one, and its path when it has one.
pub(crate) fn http(url: &str) -> Labels {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':').unwrap_or("")),
            None => (host_port, ""),
        },
        None => host_port.rsplit_once(':').unwrap_or((host_port, "")),
    };
    let path_and_more = &rest[end..];
    let path = &path_and_more[..path_and_more
        .find(['?', '#'])
        .unwrap_or(path_and_more.len())];
    let mut labels = vec![("server_address", host.to_owned())];
    if let Ok(port) = port.parse::<i64>() {
        labels.push(("server_port", port.to_string()));
    }
    if !path.is_empty() {
        labels.push(("url_path", path.to_owned()));
    }
    labels
}

/// Go's `net.SplitHostPort`: `host:port` or `[host]:port`; a host with a colon outside
/// brackets, or no port separator, is an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return (!port.contains([':', '[', ']'])).then_some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    (!host.contains([':', '[', ']']) && !port.contains(['[', ']'])).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(labels: &[(&'static str, &str)]) -> Labels {
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    #[test]
    fn grpc_endpoints_split_as_go_splits_them() {
        assert_eq!(
            grpc("tempo:4317"),
            owned(&[("server_address", "tempo"), ("server_port", "4317")])
        );
        assert_eq!(
            grpc("[::1]:4317"),
            owned(&[("server_address", "::1"), ("server_port", "4317")])
        );
        // Not `host:port` to Go: the whole endpoint is the address.
        for whole in ["https://tempo:4317", "dns:///tempo:4317", "tempo", "::1"] {
            assert_eq!(grpc(whole), owned(&[("server_address", whole)]), "{whole}");
        }
        // A port that is not a number is left out.
        assert_eq!(grpc("tempo:otlp"), owned(&[("server_address", "tempo")]));
    }

    #[test]
    fn http_urls_give_host_port_and_path() {
        assert_eq!(
            http("http://loki:3100/otlp/v1/logs"),
            owned(&[
                ("server_address", "loki"),
                ("server_port", "3100"),
                ("url_path", "/otlp/v1/logs")
            ])
        );
        assert_eq!(
            http("https://otlp-gateway.grafana.net/otlp/v1/traces?x=1"),
            owned(&[
                ("server_address", "otlp-gateway.grafana.net"),
                ("url_path", "/otlp/v1/traces")
            ])
        );
        assert_eq!(
            http("http://user:pw@[::1]:4318"),
            owned(&[("server_address", "::1"), ("server_port", "4318")])
        );
    }
}
