//! Placing an address, a community name or a street name.

use std::collections::{BTreeSet, HashMap};

use super::{GridRef, GridShape};

/// Where a case is placed: as precisely as the text allows, never a guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A known address: its grid.
    Grid(GridRef),
    /// A community or village, with its street or township (full name).
    Community {
        /// Name of the community or village.
        community: String,
        /// Full name of its street or township.
        street: String,
    },
    /// Only the street or township (full name).
    Street {
        /// Full name of the street or township.
        street: String,
    },
}

/// Places an address, a community name or a street name, built from the
/// grids and the known addresses.
///
/// Rules, in order:
///
/// 1. Every text is normalised ([`Gazetteer::normalise`]): whitespace removed
///    (which trims), full-width ASCII (digits, letters, punctuation) made
///    half-width, and a leading `北京市`, `北京`, `通州区` or `北京市通州区`
///    stripped.
/// 2. A known address gives its grid.
/// 3. Otherwise the community: the name given if it is known, else the
///    longest known name contained in the address (names of equal, longest
///    length are all candidates). If the name exists in several streets, the
///    street (rule 4) picks one; a candidate outside that street is dropped.
///    One candidate left gives the community; several (still ambiguous) give
///    `None`; none left (the community is not in the street named) falls
///    through to the street.
/// 4. Otherwise the street or township: the name given, else one contained in
///    the address. A full name (`梨园镇`) matches; so does the short name
///    (`梨园`) followed by nothing or by `镇`, `街道`, `地区`, `乡` or `回族乡`
///    (so `玉桥东里社区` does not name 玉桥街道). An address that names
///    several streets names none.
/// 5. Otherwise `None`: the caller flags the case as unplaced.
pub struct Gazetteer {
    addresses: HashMap<String, GridRef>,
    /// Community name → the streets that have a community of that name.
    communities: HashMap<String, BTreeSet<String>>,
    /// Community names, longest first (in characters), then by name.
    names_by_length: Vec<(usize, String)>,
    /// (full name, short name) of every street.
    streets: Vec<(String, String)>,
}

/// What may follow a street's short name.
const STREET_SUFFIXES: &[&str] = &["镇", "街道", "地区", "乡", "回族乡"];
/// What a street's full name may end with; the rest is its short name.
const STREET_KINDS: &[&str] = &["回族乡", "街道", "地区", "镇", "乡"];

impl Gazetteer {
    /// Builds the gazetteer. Addresses are normalised; an address whose grid
    /// is not among `grids` is left out, and of an address given twice the
    /// first is kept.
    pub fn build(grids: &[GridShape], addresses: &[(String, String)]) -> Gazetteer {
        let mut by_id: HashMap<&str, &GridShape> = HashMap::new();
        let mut communities: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut streets: Vec<(String, String)> = Vec::new();
        for grid in grids {
            by_id.entry(grid.grid_id.as_str()).or_insert(grid);
            communities
                .entry(Self::normalise(&grid.community))
                .or_default()
                .insert(grid.street.clone());
            if !streets.iter().any(|(name, _)| *name == grid.street) {
                let short = STREET_KINDS
                    .iter()
                    .find_map(|kind| grid.street.strip_suffix(kind))
                    .filter(|short| !short.is_empty())
                    .unwrap_or(&grid.street)
                    .to_owned();
                streets.push((grid.street.clone(), short));
            }
        }
        let mut known = HashMap::new();
        for (address, grid_id) in addresses {
            if let Some(grid) = by_id.get(grid_id.as_str()) {
                known
                    .entry(Self::normalise(address))
                    .or_insert_with(|| GridRef {
                        grid_id: grid.grid_id.clone(),
                        community: grid.community.clone(),
                        street: grid.street.clone(),
                    });
            }
        }
        let mut names_by_length: Vec<(usize, String)> = communities
            .keys()
            .filter(|name| !name.is_empty())
            .map(|name| (name.chars().count(), name.clone()))
            .collect();
        names_by_length.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Gazetteer {
            addresses: known,
            communities,
            names_by_length,
            streets,
        }
    }

    /// Places a case from its address, street and community, each optional
    /// (see the rules on [`Gazetteer`]).
    pub fn place(
        &self,
        address: Option<&str>,
        street: Option<&str>,
        community: Option<&str>,
    ) -> Option<Placement> {
        let clean = |text: Option<&str>| text.map(Self::normalise).filter(|t| !t.is_empty());
        let (address, street, community) = (clean(address), clean(street), clean(community));

        if let Some(grid) = address.as_ref().and_then(|a| self.addresses.get(a)) {
            return Some(Placement::Grid(grid.clone()));
        }

        let street = street
            .as_deref()
            .and_then(|s| self.street_named(s))
            .or_else(|| address.as_deref().and_then(|a| self.street_in(a)));

        let names: Vec<&str> = match community.as_deref() {
            Some(name) if self.communities.contains_key(name) => vec![name],
            _ => address
                .as_deref()
                .map(|a| self.longest_names_in(a))
                .unwrap_or_default(),
        };
        let mut candidates: Vec<(&str, &str)> = names
            .iter()
            .flat_map(|&name| {
                self.communities[name]
                    .iter()
                    .map(move |street| (name, street.as_str()))
            })
            .collect();
        if let Some(street) = street {
            candidates.retain(|(_, s)| *s == street);
        }
        match candidates.as_slice() {
            [(community, street)] => {
                return Some(Placement::Community {
                    community: (*community).to_owned(),
                    street: (*street).to_owned(),
                });
            }
            [] => {}
            _ => return None,
        }

        street.map(|street| Placement::Street {
            street: street.to_owned(),
        })
    }

    /// Normalises a text as [`Gazetteer::place`] does: removes whitespace,
    /// makes full-width ASCII half-width and strips a leading `北京市`,
    /// `北京`, `通州区` or `北京市通州区`.
    pub fn normalise(text: &str) -> String {
        let text: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
                _ => c,
            })
            .collect();
        let rest = ["北京市", "北京"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
            .unwrap_or(&text);
        rest.strip_prefix("通州区").unwrap_or(rest).to_owned()
    }

    /// The street whose full name is `text`, or whose short name is `text`
    /// alone or with one of [`STREET_SUFFIXES`].
    fn street_named(&self, text: &str) -> Option<&str> {
        self.streets
            .iter()
            .find(|(name, short)| {
                text == name
                    || text
                        .strip_prefix(short.as_str())
                        .is_some_and(|rest| rest.is_empty() || STREET_SUFFIXES.contains(&rest))
            })
            .map(|(name, _)| name.as_str())
    }

    /// The one street named in an address, if exactly one is.
    fn street_in(&self, address: &str) -> Option<&str> {
        let mut found = self.streets.iter().filter(|(name, short)| {
            address.contains(name.as_str())
                || address.match_indices(short.as_str()).any(|(at, _)| {
                    let rest = &address[at + short.len()..];
                    rest.is_empty() || STREET_SUFFIXES.iter().any(|s| rest.starts_with(s))
                })
        });
        match (found.next(), found.next()) {
            (Some((name, _)), None) => Some(name.as_str()),
            _ => None,
        }
    }

    /// The longest community names contained in an address (several if
    /// they are equally long).
    fn longest_names_in(&self, address: &str) -> Vec<&str> {
        let mut longest = None;
        let mut names = Vec::new();
        for (length, name) in &self.names_by_length {
            if longest.is_some_and(|l| *length < l) {
                break;
            }
            if address.contains(name.as_str()) {
                longest = Some(*length);
                names.push(name.as_str());
            }
        }
        names
    }
}
