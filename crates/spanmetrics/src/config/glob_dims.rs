//! The checks of glob dimensions (`dimensions: [{glob: "k8s.*.name"}]`), otelcol's and those
//! that keep a series from having one label twice.

use super::glob::Glob;
use super::{Config, Dimension, DEFAULT_DIMENSIONS};
use redline_pipeline::Invalid;

impl Config {
    /// The glob dimensions of `list` (the key at `path`), compiled; their problems pushed onto
    /// `problems`. A glob may not match a default dimension, a named one of `dimensions` or of
    /// `list`, or a label the connector adds.
    pub(super) fn check_globs(
        &self,
        path: &str,
        list: &[Dimension],
        problems: &mut Vec<Invalid>,
    ) -> Vec<Glob> {
        let named: Vec<&str> = self
            .dimensions
            .iter()
            .chain(list)
            .filter(|d| d.glob.is_none())
            .map(|d| d.name.as_str())
            .collect();
        let scope = !self.include_instrumentation_scope.is_empty();
        let synthetic = [
            (self.enable_metrics_sampling_method, super::SAMPLING_METHOD),
            (scope, super::SCOPE_NAME),
            (scope, super::SCOPE_VERSION),
            (self.tempo_red_table, super::TEMPO_SERVICE),
            (true, crate::OVERFLOW_LABEL),
        ];
        let mut globs = Vec::new();
        for (i, d) in list.iter().enumerate() {
            let Some(pattern) = &d.glob else {
                continue;
            };
            let at = format!("{path}[{i}]");
            if !d.name.is_empty() {
                problems.push(Invalid::new(
                    at.as_str(),
                    format!(
                        "must set only one of `name` or `glob`, got both: name={:?} glob={pattern:?}",
                        d.name
                    ),
                ));
            }
            if d.default.is_some() {
                problems.push(Invalid::new(
                    format!("{at}.default"),
                    format!("`default` is not supported on glob dimension {pattern:?}"),
                ));
            }
            let glob_path = format!("{at}.glob");
            let glob = match Glob::compile(pattern) {
                Ok(glob) => glob,
                Err(e) => {
                    problems.push(Invalid::new(
                        glob_path,
                        format!("invalid dimension glob {pattern:?}: {e}"),
                    ));
                    continue;
                }
            };
            if let Some(name) = DEFAULT_DIMENSIONS
                .iter()
                .chain(&named)
                .find(|n| glob.matches(n))
            {
                problems.push(Invalid::new(
                    glob_path.as_str(),
                    format!("duplicate dimension name {name:?} conflicting with glob {pattern:?}"),
                ));
            }
            if let Some((_, label)) = synthetic
                .iter()
                .find(|(on, label)| *on && glob.matches(label))
            {
                problems.push(Invalid::new(
                    glob_path.as_str(),
                    format!("matches `{label}`, a label the connector adds itself"),
                ));
            }
            globs.push(glob);
        }
        if !globs.is_empty() && self.storage.is_some() && path == "dimensions" {
            problems.push(Invalid::new(
                "storage",
                "does not keep the series of glob dimensions across restarts yet: remove \
                 `storage` or the glob dimensions",
            ));
        }
        globs
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;
    use redline_pipeline::CheckAll;

    fn glob(pattern: &str) -> Dimension {
        Dimension {
            glob: Some(pattern.to_owned()),
            ..Dimension::default()
        }
    }

    #[test]
    fn glob_dimensions_take_the_last_slot() {
        let c = Config {
            dimensions: vec![Dimension::named("http.route"), glob("k8s.*.name")],
            enable_metrics_sampling_method: true,
            ..Config::default()
        };
        let s = c.check_all().expect("valid");
        assert_eq!(s.attribute_dims, 1);
        assert_eq!(s.sampling_dim, Some(1));
        assert_eq!(s.glob_dim, Some(2));
        assert_eq!(s.dimensions.len(), 3);
        assert_eq!(s.globs.len(), 1);
    }

    #[test]
    fn glob_dimensions_are_checked_as_otelcol_checks_them() {
        let c = Config {
            dimensions: vec![
                Dimension {
                    name: "a".to_owned(),
                    ..glob("x.*")
                },
                Dimension {
                    default: Some("d".to_owned()),
                    ..glob("y.*")
                },
                glob("[a"),
                glob("span.*"),
                Dimension::named("http.route"),
                glob("http.*"),
                glob("otel.**"),
            ],
            calls_dimensions: vec![glob("z.*"), glob("http.route"), Dimension::named("http.x")],
            storage: Some("file_storage".to_owned()),
            ..Config::default()
        };
        assert_eq!(
            problem_paths(&c),
            [
                "dimensions[0]",
                "dimensions[1].default",
                "dimensions[2].glob",
                "dimensions[3].glob",
                "dimensions[5].glob",
                "dimensions[6].glob",
                "storage",
                "calls_dimensions[1].glob",
                "calls_dimensions[2].name",
                // calls_dimensions keep calls and duration apart: `storage` again, for that.
                "storage",
            ]
        );
    }
}
