//! A loaded configuration: the main file and every file its `include`s
//! reach, parsed, with the include map.

use crate::dump::split_dump;
use crate::error::{LoadError, LoadErrorKind, LoadWarning};
use crate::glob::has_wildcard;
use crate::readahead::{Prepared, ReadAhead};
use crate::{Context, Loader, MemoryLoader};
use std::collections::HashMap;
use upkeep_syntax::{
    parse, Directive, FileId, Node, SharedText, SourceFile, SourceMap, Span, SyntaxTree,
};

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// A missing include file is an error instead of a warning.
    pub strict: bool,
    /// The context the main file is read in; `None` guesses it from the
    /// file's top-level directives ([`Context::guess`]).
    pub context: Option<Context>,
    /// nginx's configuration prefix, which relative `include` paths resolve
    /// against. `None`: the main file's directory, as nginx does for `-c`.
    pub prefix: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ConfigSet {
    /// Indexed by `FileId`; the main file first, then in the order nginx
    /// reads them (depth first, each file once).
    pub files: Vec<SourceFile>,
    /// `trees[i]` is the tree of `files[i]`.
    pub trees: Vec<SyntaxTree>,
    pub main: FileId,
    /// The prefix relative includes were resolved against, ending in `/`
    /// (empty: the current directory).
    pub prefix: String,
    pub context: Context,
    pub warnings: Vec<LoadWarning>,
    /// For every `include` directive that was resolved (keyed by the
    /// directive's span), the files it expanded to, in nginx's order. An
    /// include whose file could not be read maps to no files.
    pub includes: HashMap<Span, Vec<FileId>>,
}

/// One file on the depth-first walk through includes.
struct Visit {
    file: FileId,
    /// The `include` directives of the file, in document order: the
    /// directive's span, its argument, and whether the files it names are
    /// read as a list of words ([`WORD_LIST_BLOCKS`]).
    includes: Vec<(Span, String, bool)>,
    next_include: usize,
    /// Paths of the include being expanded that are still to be visited.
    pending: std::vec::IntoIter<String>,
    current: Option<Span>,
    /// The include being expanded names files read as words.
    current_words: bool,
}

impl ConfigSet {
    /// Load `main_path` and everything it includes, resolving includes like
    /// nginx: relative to the prefix, globs expanded in sorted order.
    pub fn load(
        main_path: &str,
        loader: &dyn Loader,
        opts: &LoadOptions,
    ) -> Result<ConfigSet, LoadError> {
        Self::load_impl(main_path, loader, opts, true)
    }

    /// Load only `main_path`, leaving its `include`s unresolved (they stay
    /// in [`ConfigSet::expand`]'s output as directives).
    pub fn load_single(
        main_path: &str,
        loader: &dyn Loader,
        opts: &LoadOptions,
    ) -> Result<ConfigSet, LoadError> {
        Self::load_impl(main_path, loader, opts, false)
    }

    fn load_impl(
        main_path: &str,
        loader: &dyn Loader,
        opts: &LoadOptions,
        follow_includes: bool,
    ) -> Result<ConfigSet, LoadError> {
        let prefix = match &opts.prefix {
            Some(p) if !p.is_empty() && !p.ends_with('/') => format!("{p}/"),
            Some(p) => p.clone(),
            None => match main_path.rfind('/') {
                Some(i) => main_path[..=i].to_string(),
                None => String::new(),
            },
        };
        let bytes = loader.read_shared(main_path).map_err(|e| LoadError {
            kind: LoadErrorKind::MainUnreadable,
            path: main_path.to_string(),
            pos: None,
            message: format!("cannot read the configuration: {e}"),
            source: None,
        })?;
        let mut set = ConfigSet {
            files: Vec::new(),
            trees: Vec::new(),
            main: FileId(0),
            prefix,
            context: Context::Main,
            warnings: Vec::new(),
            includes: HashMap::new(),
        };
        let mut by_path: HashMap<String, FileId> = HashMap::new();
        let main = set.add_file(main_path.to_string(), bytes, false)?;
        by_path.insert(normalize(main_path), main);
        set.context = opts
            .context
            .unwrap_or_else(|| Context::guess(&set.trees[main.0 as usize]));

        if !follow_includes {
            return Ok(set);
        }
        let mut on_stack = vec![true];
        let mut stack = vec![set.visit(main, false)];
        let mut read_ahead = ReadAhead::default();
        while let Some(top) = stack.last_mut() {
            if let Some(path) = top.pending.next() {
                let include = top.current.expect("pending paths belong to an include");
                let from = top.file;
                let words = top.current_words;
                let key = normalize(&path);
                let id = match by_path.get(&key) {
                    Some(&id) => {
                        if on_stack[id.0 as usize] {
                            return Err(set.cycle_error(from, include, id, &stack));
                        }
                        id
                    }
                    None => match read_ahead.take(&key).map_or_else(
                        || loader.read_shared(&path).map(Err),
                        |prepared| match prepared {
                            Prepared::Unreadable(e) => Err(e),
                            Prepared::Parsed { file, tree } => Ok(Ok((file, tree))),
                        },
                    ) {
                        Ok(read) => {
                            let id = match read {
                                Err(bytes) => set.add_file(path, bytes, words)?,
                                Ok((file, tree)) => set.add_parsed(file, tree, words)?,
                            };
                            by_path.insert(key, id);
                            on_stack.push(true);
                            set.includes.entry(include).or_default().push(id);
                            let visit = set.visit(id, words);
                            stack.push(visit);
                            continue;
                        }
                        Err(e) => {
                            let message = format!("cannot read included file \"{path}\": {e}");
                            let why = (path, Some(e.kind()));
                            set.missing_include(from, include, message, why, opts.strict)?;
                            continue;
                        }
                    },
                };
                set.includes.entry(include).or_default().push(id);
                continue;
            }
            if top.next_include < top.includes.len() {
                let (span, arg, words) = top.includes[top.next_include].clone();
                top.next_include += 1;
                top.current = Some(span);
                top.current_words = words;
                set.includes.entry(span).or_default();
                let full = if arg.starts_with('/') {
                    arg
                } else {
                    format!("{}{arg}", set.prefix)
                };
                let paths = if has_wildcard(&full) {
                    match loader.glob(&full) {
                        Ok(paths) => {
                            read_ahead.prepare(
                                &paths,
                                normalize,
                                |k| !by_path.contains_key(k),
                                loader,
                                set.files.len() as u32,
                            );
                            paths
                        }
                        Err(e) => {
                            let from = top.file;
                            let message = format!("glob \"{full}\" failed: {e}");
                            let why = (full, Some(e.kind()));
                            set.missing_include(from, span, message, why, opts.strict)?;
                            Vec::new()
                        }
                    }
                } else {
                    vec![full]
                };
                let top = stack.last_mut().expect("still on the stack");
                top.pending = paths.into_iter();
                continue;
            }
            on_stack[top.file.0 as usize] = false;
            stack.pop();
        }
        Ok(set)
    }

    /// Load the output of `nginx -T`: each file follows a
    /// `# configuration file PATH:` line. The first file is the main one;
    /// includes resolve among the dumped files.
    pub fn from_nginx_t(dump: &[u8], opts: &LoadOptions) -> Result<ConfigSet, LoadError> {
        let files = split_dump(dump);
        let Some((main, _)) = files.first() else {
            return Err(LoadError {
                kind: LoadErrorKind::NotADump,
                path: "-".into(),
                pos: None,
                message:
                    "no \"# configuration file PATH:\" lines; expected the output of `nginx -T`"
                        .into(),
                source: None,
            });
        };
        let main = main.clone();
        let mut loader = MemoryLoader::new();
        for (path, bytes) in files {
            loader.insert(path, bytes);
        }
        ConfigSet::load(&main, &loader, opts)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn tree(&self, id: FileId) -> &SyntaxTree {
        &self.trees[id.0 as usize]
    }

    /// The files an `include` directive expanded to (empty for anything
    /// else, and for an include whose files could not be read).
    pub fn included(&self, include_directive: &Directive) -> &[FileId] {
        self.includes
            .get(&include_directive.span())
            .map_or(&[], Vec::as_slice)
    }

    /// The directives among `nodes`, with each resolved `include` replaced
    /// (recursively) by the top-level directives of the files it names, in
    /// nginx's order. This is what nginx's directive handlers see in a block.
    pub fn expand<'a>(&'a self, nodes: &'a [Node]) -> Vec<&'a Directive> {
        let mut out = Vec::new();
        self.expand_nodes_into(nodes, &mut |n| {
            if let Node::Directive(d) = n {
                out.push(d)
            }
        });
        out
    }

    /// Like [`ConfigSet::expand`], but keeps comments.
    pub fn expand_nodes<'a>(&'a self, nodes: &'a [Node]) -> Vec<&'a Node> {
        let mut out = Vec::new();
        self.expand_nodes_into(nodes, &mut |n| out.push(n));
        out
    }

    fn expand_nodes_into<'a>(&'a self, nodes: &'a [Node], f: &mut impl FnMut(&'a Node)) {
        for node in nodes {
            if let Node::Directive(d) = node {
                if let Some(ids) = self
                    .includes
                    .get(&d.span())
                    .filter(|_| d.name_is("include"))
                {
                    for id in ids {
                        self.expand_nodes_into(&self.tree(*id).nodes, f);
                    }
                    continue;
                }
            }
            f(node);
        }
    }

    /// The main file's directives with includes expanded.
    pub fn root(&self) -> Vec<&Directive> {
        self.expand(&self.tree(self.main).nodes)
    }

    /// `words`: the file is read as a list of words (inside `types`,
    /// `map`, …) rather than directives.
    fn add_file(
        &mut self,
        path: String,
        bytes: SharedText,
        words: bool,
    ) -> Result<FileId, LoadError> {
        let id = FileId(self.files.len() as u32);
        let file = SourceFile::new(id, path, bytes);
        let tree = parse(&file);
        self.add_parsed(file, tree, words)
    }

    /// A file parsed ahead; parsed again if it was given another id than
    /// the one it gets now.
    fn add_parsed(
        &mut self,
        file: SourceFile,
        tree: Result<SyntaxTree, upkeep_syntax::SyntaxError>,
        words: bool,
    ) -> Result<FileId, LoadError> {
        let id = FileId(self.files.len() as u32);
        if file.id != id {
            let SourceFile { path, text, .. } = file;
            return self.add_file(path, text, words);
        }
        if !words && file.text.starts_with(UTF8_BOM) {
            return Err(byte_order_mark_error(&file, tree.as_ref().ok()));
        }
        let tree = tree.map_err(|e| LoadError::syntax(&file, e))?;
        self.files.push(file);
        self.trees.push(tree);
        Ok(id)
    }

    fn visit(&self, id: FileId, words: bool) -> Visit {
        let mut includes = Vec::new();
        collect_includes(&self.tree(id).nodes, words, &mut includes);
        Visit {
            file: id,
            includes,
            next_include: 0,
            pending: Vec::new().into_iter(),
            current: None,
            current_words: false,
        }
    }

    fn missing_include(
        &mut self,
        from: FileId,
        include: Span,
        message: String,
        (target, io_error): (String, Option<std::io::ErrorKind>),
        strict: bool,
    ) -> Result<(), LoadError> {
        let file = self.file(from);
        // A missing file may just not be on this machine (a config checked
        // out of a repository); anything else (permissions, a directory, a
        // FIFO) is wrong wherever the config runs, and fails `nginx -t`.
        if strict || io_error.is_some_and(|k| k != std::io::ErrorKind::NotFound) {
            return Err(LoadError::at(
                LoadErrorKind::IncludeUnreadable,
                file,
                include,
                message,
            ));
        }
        self.warnings.push(LoadWarning {
            path: file.path.clone(),
            pos: file.line_col(include.start),
            span: include,
            message,
            target,
            io_error,
        });
        Ok(())
    }

    fn cycle_error(
        &self,
        from: FileId,
        include: Span,
        target: FileId,
        stack: &[Visit],
    ) -> LoadError {
        // The chain from the file that is included again down to here.
        let start = stack.iter().position(|v| v.file == target).unwrap_or(0);
        let mut chain: Vec<&str> = stack[start..]
            .iter()
            .map(|v| self.file(v.file).path.as_str())
            .collect();
        chain.push(self.file(target).path.as_str());
        LoadError::at(
            LoadErrorKind::IncludeCycle,
            self.file(from),
            include,
            format!("include cycle: {}", chain.join(" includes ")),
        )
    }
}

impl SourceMap for ConfigSet {
    fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }
}

/// `include PATH;` directives anywhere in the tree (not inside Lua bodies),
/// in document order, each with whether its files are read as a list of
/// words: inside a [`WORD_LIST_BLOCKS`] block, or at the top of a file that
/// is itself read as words (`words`). Includes with another number of
/// arguments are left to the model to report; nginx refuses them.
fn collect_includes(nodes: &[Node], words: bool, out: &mut Vec<(Span, String, bool)>) {
    for d in nodes.iter().filter_map(Node::as_directive) {
        if d.name_is("include") && d.args().len() == 1 && d.block().is_none() {
            if let Some(file) = d.args().first() {
                out.push((d.span(), file.text().into_owned(), words));
            }
        }
        if let Some(b) = d.block() {
            let inner = WORD_LIST_BLOCKS.iter().any(|n| d.name_is(n));
            collect_includes(&b.nodes, inner, out);
        }
    }
}

/// Blocks whose content nginx reads as lists of words (a MIME type and its
/// extensions, a map's key and value), not as directives: a byte order mark
/// at the start of a file included there just becomes part of the first
/// word, and `nginx -t` passes.
const WORD_LIST_BLOCKS: [&str; 5] = ["types", "map", "geo", "split_clients", "charset_map"];

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// nginx does not skip a UTF-8 byte order mark: its three bytes start the
/// first token, so the first directive's name is unknown (checked against
/// nginx 1.22 in tests/non_regular_files.rs).
fn byte_order_mark_error(file: &SourceFile, tree: Option<&SyntaxTree>) -> LoadError {
    let first = tree
        .and_then(|t| t.nodes.iter().find_map(Node::as_directive))
        .filter(|d| d.name().span().start == 0)
        .and_then(|d| d.name().value().strip_prefix(UTF8_BOM))
        .map(|rest| String::from_utf8_lossy(rest).into_owned());
    let what = match first {
        Some(name) => format!("nginx fails with `unknown directive \"\\xEF\\xBB\\xBF{name}\"`"),
        None => "nginx reads it as part of the first directive and fails".to_string(),
    };
    LoadError::at(
        LoadErrorKind::ByteOrderMark,
        file,
        Span::new(file.id, 0, UTF8_BOM.len() as u32),
        format!(
            "the file starts with a UTF-8 byte order mark (bytes EF BB BF), which nginx does not skip: {what}; save the file without it"
        ),
    )
}

/// The identity of a path for "already loaded" and cycle checks: `.` and
/// empty components removed (`..` is left alone, as symlinks make it
/// ambiguous).
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ConfigSet {
    /// Load from the file system: `path` is the main config file, or a
    /// directory holding `nginx.conf`.
    pub fn load_path(path: &str, opts: &LoadOptions) -> Result<ConfigSet, LoadError> {
        ConfigSet::load(&main_file(path), &crate::FsLoader, opts)
    }

    /// [`ConfigSet::load_single`] from the file system.
    pub fn load_path_single(path: &str, opts: &LoadOptions) -> Result<ConfigSet, LoadError> {
        ConfigSet::load_single(&main_file(path), &crate::FsLoader, opts)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main_file(path: &str) -> String {
    if std::path::Path::new(path).is_dir() {
        format!("{}/nginx.conf", path.trim_end_matches('/'))
    } else {
        path.to_string()
    }
}
