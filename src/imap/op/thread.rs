//! THREAD and UID THREAD (RFC 5256 §3) with ORDEREDSUBJECT and
//! REFERENCES (§2.1, §2.2). Messages are found as SEARCH finds them.

use super::search::parse_search;
use crate::imap::proto::Token;
use crate::imap::session::{Reply, Session};

/// What threading needs of a message.
pub struct Msg {
    /// Sequence number or UID, as the answer names it.
    pub n: u32,
    pub id: Option<String>,
    /// References, or without them the first In-Reply-To (§2.2 step 1).
    pub refs: Vec<String>,
    pub date: i64,
    pub subject: String,
    /// The subject had a reply or forward prefix.
    pub reply: bool,
}

#[derive(Default, Clone)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Tree<'a> {
    msgs: &'a [Msg],
    nodes: Vec<Node>,
}

impl Tree<'_> {
    fn new_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Is `a` `b` or below it?
    fn below(&self, a: usize, b: usize) -> bool {
        let mut cur = Some(a);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == b {
                return true;
            }
            cur = self.nodes[c].parent;
            steps += 1;
            if steps > self.nodes.len() {
                return true;
            }
        }
        false
    }

    fn unlink(&mut self, c: usize) {
        if let Some(p) = self.nodes[c].parent.take() {
            self.nodes[p].children.retain(|&x| x != c);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The date a node sorts by: its message's, or its first child's.
    fn date(&self, c: usize) -> (i64, u32) {
        match self.nodes[c].msg {
            Some(m) => (self.msgs[m].date, self.msgs[m].n),
            None => self.nodes[c]
                .children
                .iter()
                .map(|&ch| self.date(ch))
                .min()
                .unwrap_or((i64::MAX, u32::MAX)),
        }
    }

    /// §2.2 step 4: drop empty dummies, promote the children of the others
    /// unless that would put several children at the root.
    fn prune(&mut self, list: Vec<usize>, root: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for c in list {
            let kids = std::mem::take(&mut self.nodes[c].children);
            let kids = self.prune(kids, false);
            self.nodes[c].children = kids.clone();
            if self.nodes[c].msg.is_some() {
                out.push(c);
            } else if kids.is_empty() {
                continue;
            } else if root && kids.len() > 1 {
                out.push(c);
            } else {
                for k in kids {
                    self.nodes[k].parent = self.nodes[c].parent;
                    out.push(k);
                }
            }
        }
        out
    }

    fn sort(&mut self, list: &mut [usize]) {
        for &c in list.iter() {
            let mut kids = std::mem::take(&mut self.nodes[c].children);
            self.sort(&mut kids);
            self.nodes[c].children = kids;
        }
        list.sort_by_key(|&c| self.date(c));
    }

    fn subject(&self, c: usize) -> Option<(&str, bool)> {
        let m = match self.nodes[c].msg {
            Some(m) => m,
            None => self.nodes[c]
                .children
                .first()
                .and_then(|&k| self.nodes[k].msg)?,
        };
        let m = &self.msgs[m];
        (!m.subject.is_empty()).then_some((m.subject.as_str(), m.reply))
    }

    fn render(&self, c: usize, out: &mut String) {
        let node = &self.nodes[c];
        if let Some(m) = node.msg {
            out.push_str(&self.msgs[m].n.to_string());
            match node.children.as_slice() {
                [] => {}
                [only] => {
                    out.push(' ');
                    self.render(*only, out);
                }
                many => {
                    out.push(' ');
                    for &k in many {
                        out.push('(');
                        self.render(k, out);
                        out.push(')');
                    }
                }
            }
        } else {
            for &k in &node.children {
                out.push('(');
                self.render(k, out);
                out.push(')');
            }
        }
    }
}

/// THREAD=REFERENCES (§2.2).
/// A msg-id in one form whatever its quoting (RFC 5256 §3: `<"a"@b>` and
/// `<a@b>` are the same Message ID): without angle brackets, quotes and
/// quoting backslashes.
pub fn normalize_id(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let mut out = String::with_capacity(id.len());
    let mut chars = id.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

pub fn references(msgs: &[Msg]) -> String {
    let mut t = Tree {
        msgs,
        nodes: Vec::new(),
    };
    let mut by_id: std::collections::HashMap<String, usize> = Default::default();
    let mut id_node = |t: &mut Tree<'_>, id: &str| -> usize {
        if let Some(&c) = by_id.get(id) {
            return c;
        }
        let c = t.new_node();
        by_id.insert(id.to_string(), c);
        c
    };
    for (i, m) in msgs.iter().enumerate() {
        // Step 1A: the message's node (a duplicate id gets its own).
        let me = match &m.id {
            Some(id) => {
                let c = id_node(&mut t, id);
                if t.nodes[c].msg.is_some() {
                    t.new_node()
                } else {
                    c
                }
            }
            None => t.new_node(),
        };
        t.nodes[me].msg = Some(i);
        // Step 1B: link the references in order, never making a loop nor
        // replacing a parent already known.
        let chain: Vec<usize> = m.refs.iter().map(|r| id_node(&mut t, r)).collect();
        for w in chain.windows(2) {
            let (p, c) = (w[0], w[1]);
            if t.nodes[c].parent.is_none() && !t.below(p, c) {
                t.link(p, c);
            }
        }
        // Step 1C: the last reference is the parent.
        match chain.last() {
            Some(&p) if !t.below(p, me) => t.link(p, me),
            Some(_) => {}
            None => t.unlink(me),
        }
    }
    // Steps 2-4.
    let roots: Vec<usize> = (0..t.nodes.len())
        .filter(|&c| t.nodes[c].parent.is_none())
        .collect();
    let mut roots = t.prune(roots, true);
    // Step 5: threads whose roots share a base subject are gathered.
    let mut table: std::collections::HashMap<String, usize> = Default::default();
    for &r in &roots {
        let Some((subject, reply)) = t.subject(r) else {
            continue;
        };
        let subject = subject.to_string();
        match table.get(&subject) {
            None => {
                table.insert(subject, r);
            }
            Some(&old) => {
                // §3 step 5.B.iv: only a message that is not a dummy is
                // replaced: by a dummy, or as a reply by an original.
                let old_dummy = t.nodes[old].msg.is_none();
                let old_reply = t.subject(old).map(|s| s.1).unwrap_or(false);
                if !old_dummy && (t.nodes[r].msg.is_none() || (old_reply && !reply)) {
                    table.insert(subject, r);
                }
            }
        }
    }
    let mut gathered = Vec::new();
    for r in roots.clone() {
        let Some((subject, reply)) = t.subject(r).map(|(s, rp)| (s.to_string(), rp)) else {
            gathered.push(r);
            continue;
        };
        let head = table[&subject];
        if head == r {
            gathered.push(r);
            continue;
        }
        let (head_dummy, me_dummy) = (t.nodes[head].msg.is_none(), t.nodes[r].msg.is_none());
        let head_reply = t.subject(head).map(|s| s.1).unwrap_or(false);
        if head_dummy && me_dummy {
            for k in std::mem::take(&mut t.nodes[r].children) {
                t.nodes[k].parent = None;
                t.link(head, k);
            }
        } else if head_dummy || (reply && !head_reply) {
            t.link(head, r);
        } else {
            // A new dummy holds both, in the head's place.
            let d = t.new_node();
            t.link(d, head);
            t.link(d, r);
            table.insert(subject, d);
            if let Some(pos) = gathered.iter().position(|&x| x == head) {
                gathered[pos] = d;
            }
        }
    }
    roots = gathered;
    // Step 6: siblings and roots by date.
    t.sort(&mut roots);
    let mut out = String::new();
    for r in roots {
        out.push('(');
        t.render(r, &mut out);
        out.push(')');
    }
    out
}

/// THREAD=ORDEREDSUBJECT (§2.1): by base subject, each group's first
/// message the parent of the rest, groups by their first date.
pub fn ordered_subject(msgs: &[Msg]) -> String {
    let mut order: Vec<&Msg> = msgs.iter().collect();
    order.sort_by(|a, b| (&a.subject, a.date, a.n).cmp(&(&b.subject, b.date, b.n)));
    let mut groups: Vec<Vec<&Msg>> = Vec::new();
    for m in order {
        match groups.last_mut() {
            Some(g) if g[0].subject == m.subject => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    groups.sort_by_key(|g| (g[0].date, g[0].n));
    let mut out = String::new();
    for g in groups {
        out.push('(');
        out.push_str(&g[0].n.to_string());
        match &g[1..] {
            [] => {}
            [only] => out.push_str(&format!(" {}", only.n)),
            rest => {
                out.push(' ');
                for m in rest {
                    out.push_str(&format!("({})", m.n));
                }
            }
        }
        out.push(')');
    }
    out
}

impl Session {
    pub(crate) async fn cmd_thread(&mut self, args: &[Token], uid_mode: bool) -> Reply {
        let algorithm = args.first().map(|t| t.keyword()).unwrap_or_default();
        if algorithm != "REFERENCES" && algorithm != "ORDEREDSUBJECT" {
            return "BAD THREAD takes REFERENCES or ORDEREDSUBJECT".into();
        }
        let charset = args.get(1).map(|t| t.keyword()).unwrap_or_default();
        if charset != "UTF-8" && charset != "US-ASCII" {
            return "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset".into();
        }
        let key = match parse_search(args.get(2..).unwrap_or_default()) {
            Ok(k) => k,
            Err(e) => return format!("BAD {e}"),
        };
        let found = match self.matching(&key).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let acct = self.sel_owner();
        let view = self.selected.as_ref().expect("selected").msgs.clone();
        let mut msgs = Vec::with_capacity(found.len());
        for i in found {
            let (meta, raw) = match self.load_message(acct, view[i].email, true, true).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            let Some(meta) = meta else { continue };
            let mut refs = Vec::new();
            if let Some(h) = raw
                .as_deref()
                .and_then(|r| mail_parser::MessageParser::default().parse_headers(r))
            {
                let ids = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
                    match v {
                        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
                        mail_parser::HeaderValue::TextList(l) => {
                            l.iter().map(|t| t.to_string()).collect()
                        }
                        _ => Vec::new(),
                    }
                };
                refs = ids(h.references());
                if refs.is_empty() {
                    refs = ids(h.in_reply_to()).into_iter().take(1).collect();
                }
            }
            // RFC 5256 §2.1, compared after case mapping.
            let (subject, reply) = super::sort::base_subject_5256(&meta.meta.subject);
            let subject = super::sort::casemap(&subject);
            msgs.push(Msg {
                n: if uid_mode { view[i].uid } else { i as u32 + 1 },
                id: meta.meta.message_id.as_deref().map(normalize_id),
                refs: refs.iter().map(|r| normalize_id(r)).collect(),
                date: meta.meta.sent_at.unwrap_or(meta.received_at),
                subject,
                reply,
            });
        }
        let threads = if algorithm == "REFERENCES" {
            references(&msgs)
        } else {
            ordered_subject(&msgs)
        };
        let line = if threads.is_empty() {
            "THREAD".to_string()
        } else {
            format!("THREAD {threads}")
        };
        self.untagged(&line);
        super::completed("THREAD", uid_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: u32, id: &str, refs: &[&str], subject: &str) -> Msg {
        let (base, reply) = crate::imap::op::sort::base_subject_5256(subject);
        Msg {
            n,
            id: Some(id.into()),
            refs: refs.iter().map(|r| r.to_string()).collect(),
            date: n as i64,
            reply,
            subject: crate::imap::op::sort::casemap(&base),
        }
    }

    fn sample() -> Vec<Msg> {
        vec![
            m(1, "1", &[], "A"),
            m(2, "2", &["1"], "Re: A"),
            m(3, "3", &["1"], "Re: A"),
            m(4, "4", &["1", "2"], "Re: A"),
            m(5, "5", &[], "B"),
            m(6, "6", &["gone"], "C"),
            // A reply whose parent never arrived, same subject as 5.
            m(7, "7", &["gone-too"], "Re: B"),
        ]
    }

    #[test]
    fn references_threads() {
        assert_eq!(references(&sample()), "(1 (2 4)(3))(5 7)(6)");
    }

    #[test]
    fn ordered_subject_threads() {
        assert_eq!(ordered_subject(&sample()), "(1 (2)(3)(4))(5 7)(6)");
    }

    #[test]
    fn loops_and_duplicates_do_not_hang() {
        let msgs = vec![
            m(1, "1", &["2"], "x"),
            m(2, "2", &["1"], "x"),
            m(3, "1", &[], "y"),
        ];
        let t = references(&msgs);
        for n in ["1", "2", "3"] {
            assert!(t.contains(n), "{t}");
        }
    }
}
