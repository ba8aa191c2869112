//! Shapes the derived schema of the TracePipeline spec into Kyma's (feature `schema`).
//!
//! serde's `default` on a field lets local YAML report a missing field with Kyma's own message, but
//! schemars turns it into a schema `default` and drops the field from `required`. A CRD default is
//! applied by the API server, which Kyma's schema never asks for, so each object states its
//! required fields and real defaults here instead.

use schemars::Schema;
use schemars::transform::Transform;
use serde_json::Value;

/// The required fields and defaults of one object schema; every other serde default is removed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Object {
    /// Properties that must be present.
    pub required: &'static [&'static str],
    /// Properties the API server fills in when absent.
    pub defaults: &'static [(&'static str, &'static str)],
}

// === impl Object ===

impl Transform for Object {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            for (name, prop) in props.iter_mut() {
                if let Value::Object(prop) = prop {
                    prop.remove("default");
                    if let Some((_, value)) = self.defaults.iter().find(|(n, _)| n == name) {
                        prop.insert("default".into(), Value::String((*value).into()));
                    }
                }
            }
        }
        if !self.required.is_empty() {
            let mut required: Vec<&str> = self.required.to_vec();
            required.sort_unstable();
            schema.insert("required".into(), Value::from(required));
        } else {
            schema.remove("required");
        }
    }
}
