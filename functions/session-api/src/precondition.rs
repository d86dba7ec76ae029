//! `If-Match`: what it demands, parsed before any DynamoDB call.

use lambda_http::http::{HeaderMap, header};
use session_store::EntityTag;

use crate::problem::ApiError;

/// What `If-Match` demands (RFC 9110, section 13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: that the session exists.
    Exists,
    /// That the session is in one of these states: the strong tags of the list that
    /// this API could have issued. Empty when no member can match (weak tags, foreign
    /// tags): the precondition then fails whatever the session.
    OneOf(Vec<EntityTag>),
}

/// `If-Match`, every line of it: a list of entity tags matches when any member matches
/// by strong comparison, so a weak member never matches but a strong one beside it may.
/// Several lines count as one list, as API Gateway's payload 2.0 joins them with commas.
/// A malformed member, `*` inside a list, or a line that is not text fails the
/// precondition (412) rather than the request's syntax. Tags are the version as a
/// canonical decimal integer, with the Django codec followed by `.` and 12 hex digits of
/// the data's hash: a tag such as `"01"` or `"+1"` is well formed but never matches.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ApiError> {
    let mut lines = Vec::new();
    for line in headers.get_all(header::IF_MATCH) {
        lines.push(line.to_str().map_err(|_| ApiError::PreconditionFailed)?);
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let field = lines.join(", ");
    if field.trim() == "*" {
        return Ok(Some(Precondition::Exists));
    }
    let tags = entity_tags(&field).ok_or(ApiError::PreconditionFailed)?;
    let mut ours: Vec<EntityTag> = tags
        .into_iter()
        .filter(|(weak, _)| !weak)
        .filter_map(|(_, opaque)| EntityTag::parse(opaque))
        .collect();
    ours.sort();
    ours.dedup();
    Ok(Some(Precondition::OneOf(ours)))
}

/// The members of a list of entity tags, `(weak, opaque tag)` each, or `None` when the
/// list is malformed. Empty list elements (`"1", , "2"`) are allowed, as RFC 9110
/// section 5.6.1 asks of a recipient; a tag may itself hold a comma.
fn entity_tags(field: &str) -> Option<Vec<(bool, &str)>> {
    let mut tags = Vec::new();
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return (!tags.is_empty()).then_some(tags);
        }
        let (weak, quoted) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let inner = quoted.strip_prefix('"')?;
        let end = inner.find('"')?;
        let opaque = &inner[..end];
        // etagc: any visible character but DQUOTE, and obs-text.
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        tags.push((weak, opaque));
        rest = inner[end + 1..].trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
}
