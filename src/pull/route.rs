//! Which requests are the Pull endpoint's: the template's path, with the id in the path or
//! the query.

use crate::template::{IdPosition, PullUrlTemplate, TemplateError};

/// Which requests are ours and where their id stands.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The template's path split on `/`.
    segments: Vec<String>,
    pub(super) id: IdPosition,
}

impl Route {
    pub(crate) fn new(template: &PullUrlTemplate) -> Result<Self, TemplateError> {
        // `PullUrlTemplate::parse` refused many ids and the `lftoken` parameter.
        let id = template.id_position()?;
        Ok(Self {
            segments: template.path().split('/').map(str::to_owned).collect(),
            id,
        })
    }

    /// `Some` if `path` is the template's path; with the raw id if it stands in the path.
    pub(super) fn matches<'a>(&self, path: &'a str) -> Option<Option<&'a str>> {
        let mut raw_id = None;
        let mut request = path.split('/');
        for (index, expected) in self.segments.iter().enumerate() {
            let segment = request.next()?;
            match &self.id {
                IdPosition::Path {
                    index: at,
                    prefix,
                    suffix,
                } if *at == index => {
                    let id = segment
                        .strip_prefix(prefix.as_str())?
                        .strip_suffix(suffix.as_str())?;
                    raw_id = Some(id);
                }
                _ if segment != expected => return None,
                _ => {}
            }
        }
        if request.next().is_some() {
            return None;
        }
        Some(raw_id)
    }
}
