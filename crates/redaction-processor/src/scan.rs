//! The dry run on traces: whether redaction would change a request, read on its bytes. Most
//! requests of a deployment that masks rare values (card numbers, tokens) carry none: those
//! travel on as received without being decoded at all.

use redline_otlp_wire::{
    walk_lazy, AttributeIter, LazySpanView, LazyTraceVisitor, ResourceView, ScopeView, WireError,
};

use crate::config::{Rules, Summary};

impl Rules {
    /// `false` only when redacting `request` (a validated traces request) would leave it as
    /// it is. A blocked value that matches is taken as a change even when masking would
    /// write the same text back: the full run then decides.
    pub fn traces_may_change(&self, request: &[u8]) -> Result<bool, WireError> {
        let mut scan = Scan {
            rules: self,
            found: false,
        };
        walk_lazy(request, &mut scan)?;
        Ok(scan.found)
    }

    fn attributes_may_change(&self, attributes: AttributeIter<'_>) -> bool {
        // With a summary, every finding is written on the item.
        let summarized = self.summary != Summary::Silent;
        for kv in attributes {
            if self.ignores(kv.key) {
                if summarized {
                    return true;
                }
                continue;
            }
            if self.redacts(kv.key) {
                return true;
            }
            let owned;
            let text: &str = if self.redact_all_types {
                owned = kv.value.to_as_string();
                &owned
            } else {
                kv.value.str_or_empty()
            };
            if self.allows_value(text) {
                if summarized {
                    return true;
                }
                continue;
            }
            if self.blocks_key(kv.key) || self.blocked_values.iter().any(|re| re.is_match(text)) {
                return true;
            }
        }
        false
    }
}

struct Scan<'r> {
    rules: &'r Rules,
    /// Something would change: the rest of the walk has nothing to add.
    found: bool,
}

impl<'a> LazyTraceVisitor<'a> for Scan<'_> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.found = self.found || self.rules.attributes_may_change(resource.attributes());
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.found = self.found || self.rules.attributes_may_change(scope.attributes());
    }

    fn span(&mut self, span: &LazySpanView<'a>) {
        self.found = self.found
            || self.rules.attributes_may_change(span.attributes())
            || span
                .events()
                .any(|event| self.rules.attributes_may_change(event.attributes()));
    }
}
