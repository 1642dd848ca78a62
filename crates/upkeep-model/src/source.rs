//! How the model reads a configuration: the loaded files with their trees and
//! `include` expansion. The loader (`upkeep_config::ConfigSet`) implements
//! this; so does [`SingleFile`] for one in-memory file.

use upkeep_syntax::{FileId, Node, SourceFile, SyntaxTree};

/// `Sync` so that the rules can read one model from several threads.
pub trait ConfigSource: Sync {
    /// The top-level nodes of the main file.
    fn root_nodes(&self) -> &[Node];
    /// `nodes` with every `include` directive replaced, recursively, by the
    /// nodes of the files it names, in nginx's order. Comments are kept.
    fn expand_nodes<'a>(&'a self, nodes: &'a [Node]) -> Vec<&'a Node>;
    /// The file behind an id.
    fn source_file(&self, id: FileId) -> &SourceFile;
    /// Every loaded file with its tree (for suppression comments).
    fn trees(&self) -> Vec<(&SourceFile, &SyntaxTree)>;
    /// The context the main file is read in: `Main` for a whole nginx.conf,
    /// `Http` for a conf.d snippet of servers and upstreams, `Server` or
    /// `Location` for smaller snippets.
    fn root_kind(&self) -> crate::BlockKind {
        crate::BlockKind::Main
    }
    /// The files an `include` directive expanded to (directly).
    fn included_files(&self, _include: &upkeep_syntax::Directive) -> Vec<FileId> {
        Vec::new()
    }
}

/// One file without includes (tests, the browser page).
pub struct SingleFile {
    pub file: SourceFile,
    pub tree: SyntaxTree,
}

impl SingleFile {
    /// Parses `text` as file 0 named `path`.
    pub fn parse(path: &str, text: &str) -> Result<SingleFile, upkeep_syntax::SyntaxError> {
        let file = SourceFile::new(FileId(0), path, text.as_bytes().to_vec());
        let tree = upkeep_syntax::parse(&file)?;
        Ok(SingleFile { file, tree })
    }
}

impl ConfigSource for SingleFile {
    fn root_nodes(&self) -> &[Node] {
        &self.tree.nodes
    }

    fn expand_nodes<'a>(&'a self, nodes: &'a [Node]) -> Vec<&'a Node> {
        nodes.iter().collect()
    }

    fn source_file(&self, _id: FileId) -> &SourceFile {
        &self.file
    }

    fn trees(&self) -> Vec<(&SourceFile, &SyntaxTree)> {
        vec![(&self.file, &self.tree)]
    }
}

impl ConfigSource for upkeep_config::ConfigSet {
    fn root_nodes(&self) -> &[Node] {
        &self.tree(self.main).nodes
    }

    fn expand_nodes<'a>(&'a self, nodes: &'a [Node]) -> Vec<&'a Node> {
        // Same result as `ConfigSet::expand_nodes`, but only `include`
        // directives are looked up in the include map: hashing every
        // directive's span showed up in profiles of large configs.
        fn walk<'a>(set: &'a upkeep_config::ConfigSet, nodes: &'a [Node], out: &mut Vec<&'a Node>) {
            for node in nodes {
                if let Node::Directive(d) = node {
                    if d.name_is("include") {
                        if let Some(ids) = set.includes.get(&d.span()) {
                            for id in ids {
                                walk(set, &set.tree(*id).nodes, out);
                            }
                            continue;
                        }
                    }
                }
                out.push(node);
            }
        }
        let mut out = Vec::with_capacity(nodes.len());
        walk(self, nodes, &mut out);
        out
    }

    fn source_file(&self, id: FileId) -> &SourceFile {
        self.file(id)
    }

    fn trees(&self) -> Vec<(&SourceFile, &SyntaxTree)> {
        self.files.iter().zip(self.trees.iter()).collect()
    }

    fn included_files(&self, include: &upkeep_syntax::Directive) -> Vec<FileId> {
        self.included(include).to_vec()
    }

    fn root_kind(&self) -> crate::BlockKind {
        use crate::BlockKind;
        use upkeep_config::Context;
        match self.context {
            Context::Main => BlockKind::Main,
            Context::Events => BlockKind::Events,
            Context::Http => BlockKind::Http,
            Context::Server => BlockKind::Server,
            Context::Location => BlockKind::Location,
            Context::Upstream => BlockKind::Upstream,
            // stream and mail proxy TCP, not HTTP: nothing to analyse.
            _ => BlockKind::Opaque,
        }
    }
}
