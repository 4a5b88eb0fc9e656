//! Paging through `tags/list`: the page size (lowered when a registry refuses it), `last=` after a full page,
//! and `Link: <...>; rel="next"` when the registry gives one (followed only on the same scheme and host).

use reqwest::Url;

use super::RegistryError;
use super::page::Page;

/// What to ask for next.
pub(super) enum Next {
    /// The URL a `Link` header gave.
    Link(Url),
    /// A path on the registry: `/v2/<repository>/tags/list?n=...[&last=...]`.
    Path(String),
}

/// The paging state of one listing.
pub(super) struct Pager {
    n: u32,
    last: Option<String>,
    link: Option<Url>,
}

impl Pager {
    /// Pages of `page_size` tags (at least one).
    pub(super) fn new(page_size: u32) -> Pager {
        Pager {
            n: page_size.max(1),
            last: None,
            link: None,
        }
    }

    /// The next request for `repository`.
    pub(super) fn next(&mut self, repository: &str) -> Next {
        if let Some(link) = self.link.take() {
            return Next::Link(link);
        }
        let mut path = format!("/v2/{repository}/tags/list?n={}", self.n);
        if let Some(l) = &self.last {
            path.push_str("&last=");
            path.push_str(&form_urlencode(l));
        }
        Next::Path(path)
    }

    /// The registry refused the page size: ask for fewer (Quay allows at most 100; below that, halve).
    /// False when already at one.
    pub(super) fn fewer(&mut self) -> bool {
        if self.n <= 1 {
            return false;
        }
        self.n = if self.n > 100 {
            100
        } else {
            (self.n / 2).max(1)
        };
        true
    }

    /// The page size asked for.
    pub(super) fn size(&self) -> u32 {
        self.n
    }

    /// After `page` (read from `page_url`, with the `Link` header `link`): whether there is another page.
    /// A page that adds no new tag ends the listing (a registry that repeats itself cannot loop it).
    pub(super) fn advance(
        &mut self,
        page: &Page,
        link: Option<&str>,
        page_url: &Url,
        registry: &str,
    ) -> Result<bool, RegistryError> {
        if page.new == 0 {
            return Ok(false);
        }
        if let Some(link) = link.and_then(next_link_target) {
            self.link = Some(resolve_link(page_url, link, registry)?);
            return Ok(true);
        }
        if page.count == self.n as usize {
            self.last = page.last.clone();
            return Ok(true);
        }
        Ok(false)
    }
}

/// The target of `rel="next"` in a Link header.
pub(super) fn next_link_target(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// Resolves a Link target against the page URL; refuses another scheme or host. A Link without a port to the
/// same host keeps the page's port (Nexus drops it).
pub(super) fn resolve_link(
    page: &reqwest::Url,
    link: &str,
    registry: &str,
) -> Result<reqwest::Url, RegistryError> {
    let refuse = |why: String| RegistryError::Protocol {
        registry: registry.into(),
        message: why,
    };
    let mut url = page
        .join(link)
        .map_err(|_| refuse(format!("invalid Link target \"{link}\"")))?;
    if url.host_str() == page.host_str()
        && url.port().is_none()
        && page.port().is_some()
        && url.scheme() == page.scheme()
    {
        let _ = url.set_port(page.port());
    }
    if url.scheme() != page.scheme()
        || url.host_str() != page.host_str()
        || url.port_or_known_default() != page.port_or_known_default()
    {
        return Err(refuse(format!(
            "refusing to follow a Link to another scheme or host: {url}"
        )));
    }
    Ok(url)
}

fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link_target(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link_target(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#),
            Some("https://x/next")
        );
        assert_eq!(next_link_target(r#"<https://x/a>; rel="last""#), None);
        let page = reqwest::Url::parse("https://reg.example:8443/v2/a/tags/list?n=2").unwrap();
        assert_eq!(
            resolve_link(&page, "/v2/a/tags/list?last=b", "r")
                .unwrap()
                .as_str(),
            "https://reg.example:8443/v2/a/tags/list?last=b"
        );
        assert_eq!(
            resolve_link(&page, "https://reg.example/v2/a/tags/list?last=b", "r")
                .unwrap()
                .as_str(),
            "https://reg.example:8443/v2/a/tags/list?last=b",
            "Nexus drops the port"
        );
        assert!(resolve_link(&page, "https://evil.example/v2/a/tags/list", "r").is_err());
        assert!(resolve_link(&page, "http://reg.example:8443/v2/a/tags/list", "r").is_err());
        assert!(resolve_link(&page, "https://reg.example:9999/v2/a/tags/list", "r").is_err());
    }
}
