//! `themap eval-growth`: how the kept theme model follows an archive that grows, on labelled
//! texts. One class arrives only in the update, one stops arriving (it fades), the others keep
//! coming; the update is scored against the model before it and against a refit from scratch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use ndarray::Axis;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use themap::cluster::{quality, ClusterParams, ThemeTree, TreeParams};
use themap::embed::{Embedder, Prompt};

use super::{eval::read_tsv, eval::read_vectors, load_model, progress::CliProgress, Compute};

#[derive(Debug, Args)]
pub struct GrowthArgs {
    /// Labelled texts, one per line: `label<TAB>text`.
    file: PathBuf,

    /// Their vectors (`.npy`, one row per line of FILE), e.g. from `themap eval-clusters --save-vectors`.
    #[arg(long, value_name = "FILE.npy")]
    vectors: PathBuf,

    /// The class that arrives only in the update.
    #[arg(long, value_name = "LABEL")]
    arrive: String,

    /// A class that stops arriving: none of it in the update.
    #[arg(long, value_name = "LABEL")]
    fade: Option<String>,

    /// Share of each other class in the first fit; the update draws from the rest.
    #[arg(long, default_value_t = 0.7, value_name = "SHARE")]
    initial: f64,

    /// New passages in the update, as a share of the first fit's.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    update: f64,

    /// Share of the update that is the arriving class.
    #[arg(long, default_value_t = 0.3, value_name = "SHARE")]
    arriving: f64,

    /// Levels of the theme tree.
    #[arg(long, default_value_t = 2, value_name = "N")]
    levels: usize,

    /// Seed of the draw and of the fits.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Embed this many of the update's texts (document prompt) to time embedding in the same run,
    /// against which the update's cost is given. 0: not timed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    embed_sample: usize,

    /// Write the plan: one line per text, `initial`, `update` or `unused`, for peers to replay.
    #[arg(long, value_name = "FILE")]
    save_plan: Option<PathBuf>,

    /// Write each text's theme after the update (top-level stable id; `-` for unused lines).
    #[arg(long, value_name = "FILE")]
    save_labels: Option<PathBuf>,

    /// Model directory (for --embed-sample).
    #[arg(long, env = "THEMAP_MODEL", value_name = "DIR")]
    model: Option<PathBuf>,

    #[command(flatten)]
    compute: Compute,

    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct GrowthReport {
    file: PathBuf,
    initial: usize,
    update: usize,
    arriving: usize,
    seed: u64,
    /// Themes at the top level and in all, before and after the update, and in the refit.
    themes_before: (usize, usize),
    themes_after: (usize, usize),
    themes_refit: (usize, usize),
    /// ARI of the first fit's passages between before and after, top level and deepest.
    ari_old_top: f64,
    ari_old_deepest: f64,
    /// The new theme that best matches the arriving class, its F1 and level.
    arriving_f1: f64,
    arriving_level: usize,
    /// Largest share of the arriving class in one theme that existed before (deepest level).
    arriving_absorbed: f64,
    /// NMI of every passage against the labels, top level: after the update and after a refit.
    nmi_update: f64,
    nmi_refit: f64,
    /// Same, deepest level.
    nmi_update_deepest: f64,
    nmi_refit_deepest: f64,
    /// ARI between the update's top-level themes and the refit's, over every passage: how far
    /// the kept model has drifted from what a fresh fit would give.
    ari_update_refit: f64,
    /// With made-up dates (the first fit's passages spread over six months in order, the
    /// update's in a seventh), the top-level themes the trend test calls rising and falling,
    /// each with its largest class and that class's share of it.
    rising: Vec<(u32, String, f64)>,
    falling: Vec<(u32, String, f64)>,
    /// Events of the update, by kind.
    events: BTreeMap<String, usize>,
    fit_seconds: f64,
    update_seconds: f64,
    refit_seconds: f64,
    /// Embedding time of the update's new passages, from --embed-sample (0: not timed).
    embed_seconds: f64,
    embed_sample: usize,
}

pub fn eval_growth(args: GrowthArgs, quiet: bool) -> Result<()> {
    let (labels, texts) = read_tsv(&args.file, 1)?;
    let truth = &labels[0];
    let vectors = read_vectors(&args.vectors, texts.len(), &args.file)?;
    if !truth.contains(&args.arrive) {
        bail!(
            "--arrive {}: no line of {} has that label",
            args.arrive,
            args.file.display()
        );
    }

    // The plan: per class, rows in a seeded order; the first fit takes `initial` of each class
    // but the arriving one; the update the arriving class's share and the rest evenly.
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (row, label) in truth.iter().enumerate() {
        by_class.entry(label.as_str()).or_default().push(row);
    }
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(args.seed);
    for rows in by_class.values_mut() {
        rows.shuffle(&mut rng);
    }
    let mut initial: Vec<usize> = Vec::new();
    let mut rest: BTreeMap<&str, &[usize]> = BTreeMap::new();
    for (&class, rows) in &by_class {
        if class == args.arrive {
            rest.insert(class, rows);
            continue;
        }
        let take = (rows.len() as f64 * args.initial).round() as usize;
        initial.extend(&rows[..take]);
        if Some(class) != args.fade.as_deref() {
            rest.insert(class, &rows[take..]);
        }
    }
    let update_total = (initial.len() as f64 * args.update).round() as usize;
    let arriving_count = ((update_total as f64 * args.arriving).round() as usize).min(rest[args.arrive.as_str()].len());
    let mut added: Vec<usize> = rest[args.arrive.as_str()][..arriving_count].to_vec();
    let others: Vec<&[usize]> = rest
        .iter()
        .filter(|(c, _)| **c != args.arrive)
        .map(|(_, r)| *r)
        .collect();
    let each = (update_total - arriving_count) / others.len().max(1);
    for rows in &others {
        added.extend(&rows[..each.min(rows.len())]);
    }
    initial.sort_unstable();
    added.sort_unstable();
    if let Some(path) = &args.save_plan {
        let (first, second): (HashSet<usize>, HashSet<usize>) =
            (initial.iter().copied().collect(), added.iter().copied().collect());
        themap::fsutil::write_atomic(path, |w| {
            (0..texts.len()).try_for_each(|row| {
                let step = if first.contains(&row) {
                    "initial"
                } else if second.contains(&row) {
                    "update"
                } else {
                    "unused"
                };
                writeln!(w, "{step}")
            })
        })?;
    }

    // Rows of the grown archive: the first fit's, then the update's.
    let grown: Vec<usize> = initial.iter().chain(&added).copied().collect();
    let hashes: Vec<String> = grown.iter().map(|r| format!("row{r}")).collect();
    let hash_refs: Vec<&str> = hashes.iter().map(String::as_str).collect();
    let params = TreeParams {
        counts: vec![None; args.levels],
        leaves: None,
        cluster: ClusterParams {
            seed: args.seed,
            ..ClusterParams::for_tree()
        },
    };
    let progress = CliProgress::new(quiet);
    let old_vectors = vectors.select(Axis(0), &initial);
    let all_vectors = vectors.select(Axis(0), &grown);
    let n0 = initial.len();

    let started = Instant::now();
    let (before, kept, before_ids) =
        themap::themes::fit_vectors(old_vectors.view(), &hash_refs[..n0], None, &params, false, &progress)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (after, updated, after_ids) =
        themap::themes::fit_vectors(all_vectors.view(), &hash_refs, Some(&kept), &params, false, &progress)?;
    let update_seconds = started.elapsed().as_secs_f64();
    tracing::debug!("update (kept model included) in {update_seconds:.2} s");
    let started = Instant::now();
    let (refit, _, _) = themap::themes::fit_vectors(all_vectors.view(), &hash_refs, None, &params, true, &progress)?;
    let refit_seconds = started.elapsed().as_secs_f64();

    let top = |tree: &ThemeTree, ids: &[u32]| -> Vec<u32> { tree.node_at_level(1).iter().map(|&n| ids[n]).collect() };
    let deepest = |tree: &ThemeTree, ids: &[u32]| -> Vec<u32> { tree.node_of.iter().map(|&n| ids[n]).collect() };
    let before_top = top(&before, &before_ids);
    let after_top = top(&after, &after_ids);
    let ari_old_top = quality::agreement(&before_top, &after_top[..n0]).ari;
    let ari_old_deepest = quality::agreement(&deepest(&before, &before_ids), &deepest(&after, &after_ids)[..n0]).ari;

    let grown_truth: Vec<&str> = grown.iter().map(|&r| truth[r].as_str()).collect();
    let refit_ids: Vec<u32> = (0..refit.nodes.len() as u32).collect();
    let nmi = |tree: &ThemeTree, ids: &[u32], level_top: bool| {
        let predicted = if level_top { top(tree, ids) } else { deepest(tree, ids) };
        quality::agreement(&grown_truth, &predicted).nmi
    };

    // The arriving class against every new theme (any level), and against the old ones.
    let old_ids: HashSet<u32> = kept.model.themes.iter().map(|t| t.id).collect();
    let arriving_rows: Vec<usize> = (0..grown.len()).filter(|&i| grown_truth[i] == args.arrive).collect();
    let mut best = (0.0f64, 0usize);
    for (n, node) in after.nodes.iter().enumerate() {
        if old_ids.contains(&after_ids[n]) {
            continue;
        }
        let in_node: Vec<bool> = {
            let at = after.node_at_level(node.level);
            at.iter().map(|&m| m == n).collect()
        };
        let size = in_node.iter().filter(|&&b| b).count();
        let hits = arriving_rows.iter().filter(|&&r| in_node[r]).count();
        if hits > 0 {
            let (p, r) = (hits as f64 / size as f64, hits as f64 / arriving_rows.len() as f64);
            let f1 = 2.0 * p * r / (p + r);
            if f1 > best.0 {
                best = (f1, node.level);
            }
        }
    }
    let mut absorbed: HashMap<u32, usize> = HashMap::new();
    for &r in &arriving_rows {
        let id = after_ids[after.node_of[r]];
        if old_ids.contains(&id) {
            *absorbed.entry(id).or_default() += 1;
        }
    }
    let arriving_absorbed = absorbed.values().copied().max().unwrap_or(0) as f64 / arriving_rows.len().max(1) as f64;

    // The trend test on dated passages: months 1-6 for the first fit (in plan order, so each
    // class spreads over all six), month 7 for the update.
    let dates: Vec<Option<chrono::NaiveDate>> = (0..grown.len())
        .map(|i| {
            let month = if i < n0 { 1 + (i * 6 / n0.max(1)) as u32 } else { 7 };
            chrono::NaiveDate::from_ymd_opt(2025, month, 15)
        })
        .collect();
    let tops_after = after.top();
    let at_top = after.node_at_level(1);
    let members: Vec<Vec<usize>> = tops_after
        .iter()
        .map(|&t| (0..grown.len()).filter(|&i| at_top[i] == t).collect())
        .collect();
    let over = themap::themes::time::over_time(&dates, &(0..grown.len()).collect::<Vec<_>>(), &members);
    let mut rising = Vec::new();
    let mut falling = Vec::new();
    for (j, &t) in tops_after.iter().enumerate() {
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in &members[j] {
            *classes.entry(grown_truth[i]).or_default() += 1;
        }
        let (class, count) = classes
            .iter()
            .max_by_key(|(_, &c)| c)
            .map(|(c, &n)| (c.to_string(), n))
            .unwrap_or_default();
        let entry = (after_ids[t], class, count as f64 / members[j].len().max(1) as f64);
        match over.trends[j].as_ref().map(|tr| tr.direction) {
            Some(themap::themes::time::Direction::Rising) => rising.push(entry),
            Some(themap::themes::time::Direction::Falling) => falling.push(entry),
            _ => {}
        }
    }
    let refit_top = top(&refit, &refit_ids);
    let ari_update_refit = quality::agreement(&after_top, &refit_top).ari;

    let mut events = BTreeMap::new();
    for e in updated
        .model
        .events
        .iter()
        .filter(|e| e.update == updated.model.updates)
    {
        *events.entry(format!("{:?}", e.kind).to_lowercase()).or_default() += 1;
    }

    let (embed_seconds, embed_sample) = match args.embed_sample.min(added.len()) {
        0 => (0.0, 0),
        sample => {
            let model = load_model(args.model.as_deref(), None, &args.compute)?;
            let texts: Vec<&str> = added[..sample].iter().map(|&r| texts[r].as_str()).collect();
            let started = Instant::now();
            model.embed(&texts, Prompt::Document, &progress)?;
            (
                started.elapsed().as_secs_f64() * added.len() as f64 / sample as f64,
                sample,
            )
        }
    };

    if let Some(path) = &args.save_labels {
        let after_of: HashMap<usize, u32> = grown.iter().copied().zip(after_top.iter().copied()).collect();
        themap::fsutil::write_atomic(path, |w| {
            (0..texts.len()).try_for_each(|row| match after_of.get(&row) {
                Some(id) => writeln!(w, "{id}"),
                None => writeln!(w, "-"),
            })
        })?;
    }

    let counts = |tree: &ThemeTree| (tree.top().len(), tree.nodes.len());
    let report = GrowthReport {
        file: args.file.clone(),
        initial: n0,
        update: added.len(),
        arriving: arriving_rows.len(),
        seed: args.seed,
        themes_before: counts(&before),
        themes_after: counts(&after),
        themes_refit: counts(&refit),
        ari_old_top,
        ari_old_deepest,
        arriving_f1: best.0,
        arriving_level: best.1,
        arriving_absorbed,
        nmi_update: nmi(&after, &after_ids, true),
        nmi_refit: nmi(&refit, &refit_ids, true),
        nmi_update_deepest: nmi(&after, &after_ids, false),
        nmi_refit_deepest: nmi(&refit, &refit_ids, false),
        ari_update_refit,
        rising,
        falling,
        events,
        fit_seconds,
        update_seconds,
        refit_seconds,
        embed_seconds,
        embed_sample,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        return Ok(writeln!(out)?);
    }
    let r = &report;
    writeln!(
        out,
        "{} passages fitted, {} added ({} of the arriving class {}); themes {}/{} before, {}/{} after, {}/{} refit",
        r.initial,
        r.update,
        r.arriving,
        args.arrive,
        r.themes_before.0,
        r.themes_before.1,
        r.themes_after.0,
        r.themes_after.1,
        r.themes_refit.0,
        r.themes_refit.1
    )?;
    writeln!(
        out,
        "old passages kept: ARI {:.4} top, {:.4} deepest",
        r.ari_old_top, r.ari_old_deepest
    )?;
    writeln!(
        out,
        "arriving class: F1 {:.3} (new theme at level {}), at most {:.1}% in one old theme",
        r.arriving_f1,
        r.arriving_level,
        100.0 * r.arriving_absorbed
    )?;
    writeln!(
        out,
        "NMI top: update {:.4}, refit {:.4}; deepest: update {:.4}, refit {:.4}",
        r.nmi_update, r.nmi_refit, r.nmi_update_deepest, r.nmi_refit_deepest
    )?;
    writeln!(
        out,
        "update against refit: ARI {:.4} (top level, every passage)",
        r.ari_update_refit
    )?;
    writeln!(
        out,
        "rising (id, largest class, its share): {:?}; falling: {:?}",
        r.rising, r.falling
    )?;
    writeln!(out, "events: {:?}", r.events)?;
    writeln!(
        out,
        "seconds: first fit {:.2}, update {:.2}, refit {:.2}; embedding the added passages {:.1} ({} timed)",
        r.fit_seconds, r.update_seconds, r.refit_seconds, r.embed_seconds, r.embed_sample
    )?;
    Ok(())
}
