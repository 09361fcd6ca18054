//! The schemas schemars cannot derive: label selectors as controller-gen renders them,
//! with KubeStellar's label syntax patterns where its CRD has them.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// Label key syntax: an optional DNS-subdomain prefix and `/`, then a name (KubeStellar's
/// `more_validations_in_bindingpolicies` patch, on `clusterSelectors` only).
pub const LABEL_KEY_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$";
/// Label value syntax (empty allowed), as in KubeStellar's patch.
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// The label selector operators, as in KubeStellar's patch.
pub const LABEL_OPERATOR_PATTERN: &str = r"^(In|NotIn|Exists|DoesNotExist)$";

/// The schema of `metav1.LabelSelector`, as controller-gen renders it (k8s 1.30+ markers),
/// optionally with KubeStellar's label syntax patterns.
fn label_selector_schema(patterns: bool) -> Value {
    let mut key = json!({"description": "key is the label key that the selector applies to.", "type": "string"});
    let mut operator = json!({
        "description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.",
        "type": "string"
    });
    let mut value_item = json!({"type": "string"});
    let mut label_value = json!({"type": "string"});
    if patterns {
        key["pattern"] = LABEL_KEY_PATTERN.into();
        operator["pattern"] = LABEL_OPERATOR_PATTERN.into();
        value_item["pattern"] = LABEL_VALUE_PATTERN.into();
        label_value["pattern"] = LABEL_VALUE_PATTERN.into();
    }
    json!({
        "description": "A label selector: matchLabels and matchExpressions are ANDed; an empty selector matches every object.",
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "type": "array",
                "items": {
                    "description": "A label selector requirement: a key, an operator, and values.",
                    "type": "object",
                    "properties": {
                        "key": key,
                        "operator": operator,
                        "values": {
                            "description": "values is a list of label values: non-empty for In and NotIn, empty for Exists and DoesNotExist.",
                            "type": "array",
                            "items": value_item,
                            "x-kubernetes-list-type": "atomic"
                        }
                    },
                    "required": ["key", "operator"]
                },
                "x-kubernetes-list-type": "atomic"
            },
            "matchLabels": {
                "description": "matchLabels is a map of {key,value} pairs, each equivalent to an In requirement with that single value.",
                "type": "object",
                "additionalProperties": label_value
            }
        },
        "x-kubernetes-map-type": "atomic"
    })
}

fn selector_list_schema(patterns: bool) -> Schema {
    let value = json!({"type": "array", "items": label_selector_schema(patterns)});
    Schema::try_from(value).expect("a schema object")
}

/// `clusterSelectors`: label selectors with KubeStellar's label syntax patterns.
pub(crate) fn cluster_selectors_schema(_: &mut SchemaGenerator) -> Schema {
    selector_list_schema(true)
}

/// `namespaceSelectors` and `objectSelectors`: plain label selectors.
pub(crate) fn label_selectors_schema(_: &mut SchemaGenerator) -> Schema {
    selector_list_schema(false)
}

pub(crate) fn preserve_unknown_object_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// Any JSON value, kept as it is (`Value.object`, `Value.array` of a CombinedStatus).
pub(crate) fn preserve_unknown_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}
