//! llama.cpp's own benchmarks (`llama-bench`, `llama-batched-bench`) on the GGUF file and thread
//! count dln's engine uses, so `dln bench engine --llama-bench DIR` can set the engine against
//! the limit of the library it is built on, in the same run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What builds the tools, for every error that says how to get them.
const BUILD_HINT: &str = "build them with `../shared/tools/llama-limit DIR` (from the dln checkout; it puts them in DIR/bin)";

/// A llama.cpp tool that is missing, failed, or printed what dln cannot read.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{tool} is not in {dir} nor in {dir}/bin; {BUILD_HINT}")]
    Missing { tool: &'static str, dir: PathBuf },
    #[error("{path} failed: {why}; rebuild it: {BUILD_HINT}")]
    Failed { path: PathBuf, why: String },
    #[error(
        "{path} printed output dln cannot read ({why}); is it llama.cpp's own tool? {BUILD_HINT}"
    )]
    Unparseable { path: PathBuf, why: String },
}

/// The two tools, found in DIR or DIR/bin.
#[derive(Debug, Clone)]
pub struct LlamaTools {
    pub bench: PathBuf,
    pub batched_bench: PathBuf,
}

impl LlamaTools {
    /// Finds both tools in `dir` or `dir/bin` (what `llama-limit DIR` builds), before any model
    /// is loaded, so a wrong path fails at once.
    pub fn find(dir: &Path) -> Result<LlamaTools, LimitError> {
        let find = |tool: &'static str| {
            [dir.join(tool), dir.join("bin").join(tool)]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| LimitError::Missing {
                    tool,
                    dir: dir.to_path_buf(),
                })
        };
        Ok(LlamaTools {
            bench: find("llama-bench")?,
            batched_bench: find("llama-batched-bench")?,
        })
    }
}

/// Prompt and generation throughput from one `llama-bench` configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BenchFigures {
    /// pp512: tokens/s decoding a 512-token prompt.
    pub prompt_tokens_per_second: f64,
    /// tg128: tokens/s generating 128 tokens one at a time.
    pub generation_tokens_per_second: f64,
}

/// `llama-bench` with llama.cpp's default weight repacking and without (dln's build: exact
/// scores need it off, `.cargo/config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlamaBenchReport {
    pub command: String,
    pub repack_off: BenchFigures,
    pub repack_on: BenchFigures,
}

/// One batch size of `llama-batched-bench`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchedPoint {
    /// Sequences decoded together (`-npl`).
    #[serde(rename(deserialize = "pl"))]
    pub sequences: u32,
    /// S_PP: prompt tokens/s over all sequences.
    #[serde(rename(deserialize = "speed_pp"))]
    pub prompt_tokens_per_second: f64,
    /// S_TG: generated tokens/s over all sequences.
    #[serde(rename(deserialize = "speed_tg"))]
    pub generation_tokens_per_second: f64,
}

/// `llama-batched-bench` at each batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchedBenchReport {
    pub command: String,
    pub points: Vec<BatchedPoint>,
}

impl BatchedBenchReport {
    /// The figures at `sequences`, if it was measured.
    pub fn at(&self, sequences: u32) -> Option<&BatchedPoint> {
        self.points.iter().find(|p| p.sequences == sequences)
    }
}

/// The batch sizes dln's generation part measures and `llama-batched-bench` is asked for.
pub const SEQUENCES: [u32; 3] = [1, 4, 8];

/// The fields read from one `llama-bench -o json` row (the rest are ignored).
#[derive(Deserialize)]
struct BenchRow {
    n_prompt: u32,
    n_gen: u32,
    avg_ts: f64,
    /// Absent from builds older than the `--repack` option.
    repack: Option<bool>,
}

/// The pp512 and tg128 figures of `llama-bench -o json`, with and without repacking.
pub fn parse_llama_bench(json: &str) -> Result<(BenchFigures, BenchFigures), String> {
    let rows: Vec<BenchRow> = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
    let figure = |repack: bool, prompt: bool| {
        rows.iter()
            .find(|r| {
                r.repack == Some(repack)
                    && if prompt {
                        r.n_prompt > 0 && r.n_gen == 0
                    } else {
                        r.n_prompt == 0 && r.n_gen > 0
                    }
            })
            .map(|r| r.avg_ts)
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                format!(
                    "no {} row with repack {}",
                    if prompt {
                        "prompt (pp)"
                    } else {
                        "generation (tg)"
                    },
                    u8::from(repack)
                )
            })
    };
    let figures = |repack| -> Result<BenchFigures, String> {
        Ok(BenchFigures {
            prompt_tokens_per_second: figure(repack, true)?,
            generation_tokens_per_second: figure(repack, false)?,
        })
    };
    Ok((figures(false)?, figures(true)?))
}

/// The rows of `llama-batched-bench --output-format jsonl` (its other lines are log text).
pub fn parse_batched_bench(jsonl: &str) -> Result<Vec<BatchedPoint>, String> {
    let points = jsonl
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<BatchedPoint>(l).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if points.is_empty() {
        return Err("no JSON line".into());
    }
    Ok(points)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The command line as a person would type it, for the report.
fn shown(path: &Path, args: &[String]) -> String {
    std::iter::once(path.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `path` with `args` to its end and returns its stdout.
async fn run(path: &Path, args: &[String]) -> Result<String, LimitError> {
    let out = tokio::process::Command::new(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| LimitError::Failed {
            path: path.to_path_buf(),
            why: format!("cannot start it: {e}"),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(LimitError::Failed {
            path: path.to_path_buf(),
            why: format!(
                "{} ({})",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `llama-bench -p 512 -n 128 -r 3 --repack 1,0 -fa off` on `gguf` with `threads` threads:
/// flash attention off, as dln's engine runs (llama.cpp's default, `auto`, turns it on here).
pub async fn llama_bench(
    tools: &LlamaTools,
    gguf: &Path,
    threads: usize,
) -> Result<LlamaBenchReport, LimitError> {
    let (model, threads) = (gguf.display().to_string(), threads.to_string());
    let args = strings(&[
        "-m", &model, "-t", &threads, "-p", "512", "-n", "128", "-r", "3", "--repack", "1,0",
        "-fa", "off", "-o", "json",
    ]);
    let out = run(&tools.bench, &args).await?;
    let (repack_off, repack_on) =
        parse_llama_bench(&out).map_err(|why| LimitError::Unparseable {
            path: tools.bench.clone(),
            why,
        })?;
    Ok(LlamaBenchReport {
        command: shown(&tools.bench, &args),
        repack_off,
        repack_on,
    })
}

/// `llama-batched-bench -c 4096 -npp 64 -ntg 64 -npl 1,4,8 -pps -kvu -fa off` on `gguf` with
/// `threads` threads, set up as dln's engine generates: one prompt about as long as the engine
/// bench's (60 tokens) shared by every sequence, one KV cache for all sequences, flash
/// attention off.
pub async fn batched_bench(
    tools: &LlamaTools,
    gguf: &Path,
    threads: usize,
) -> Result<BatchedBenchReport, LimitError> {
    let npl = SEQUENCES.map(|n| n.to_string()).join(",");
    let (model, threads) = (gguf.display().to_string(), threads.to_string());
    let args = strings(&[
        "-m",
        &model,
        "-t",
        &threads,
        "-c",
        "4096",
        "-npp",
        "64",
        "-ntg",
        "64",
        "-npl",
        &npl,
        "-pps",
        "-kvu",
        "-fa",
        "off",
        "--output-format",
        "jsonl",
    ]);
    let out = run(&tools.batched_bench, &args).await?;
    let unparseable = |why| LimitError::Unparseable {
        path: tools.batched_bench.clone(),
        why,
    };
    let points = parse_batched_bench(&out).map_err(unparseable)?;
    if let Some(n) = SEQUENCES
        .into_iter()
        .find(|&n| !points.iter().any(|p| p.sequences == n))
    {
        return Err(unparseable(format!("no line for {n} sequences")));
    }
    Ok(BatchedBenchReport {
        command: shown(&tools.batched_bench, &args),
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA_BENCH: &str = include_str!("../../tests/data/llama-limit/llama-bench.json");
    const BATCHED_BENCH: &str =
        include_str!("../../tests/data/llama-limit/llama-batched-bench.jsonl");

    #[test]
    fn llama_bench_json_gives_pp_and_tg_with_and_without_repack() {
        let (off, on) = parse_llama_bench(LLAMA_BENCH).unwrap();
        assert_eq!(off.prompt_tokens_per_second, 105.936636);
        assert_eq!(off.generation_tokens_per_second, 18.267566);
        assert_eq!(on.prompt_tokens_per_second, 83.444228);
        assert_eq!(on.generation_tokens_per_second, 13.082488);
    }

    #[test]
    fn llama_bench_without_a_row_is_an_error() {
        let only_repack = LLAMA_BENCH.replace("\"repack\": false", "\"repack\": true");
        let err = parse_llama_bench(&only_repack).unwrap_err();
        assert!(err.contains("repack 0"), "{err}");
        assert!(parse_llama_bench("| model | size |").is_err());
    }

    #[test]
    fn batched_bench_jsonl_gives_each_batch_size() {
        let points = parse_batched_bench(BATCHED_BENCH).unwrap();
        let seqs: Vec<u32> = points.iter().map(|p| p.sequences).collect();
        assert_eq!(seqs, [1, 4, 8]);
        assert_eq!(points[2].generation_tokens_per_second, 12.509763);
        assert_eq!(points[1].prompt_tokens_per_second, 100.198105);
    }

    #[test]
    fn batched_bench_markdown_is_an_error() {
        let md = "|    PP |     TG |    B |   N_KV |\n|   256 |     64 |    1 |    320 |\n";
        assert_eq!(parse_batched_bench(md).unwrap_err(), "no JSON line");
    }

    #[test]
    fn a_missing_tool_dir_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let err = LlamaTools::find(&missing).unwrap_err().to_string();
        assert!(err.contains("llama-bench is not in"), "{err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(err.contains("../shared/tools/llama-limit DIR"), "{err}");
    }

    #[test]
    fn tools_are_found_in_dir_or_dir_bin() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("llama-bench"), "").unwrap();
        let err = LlamaTools::find(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("llama-batched-bench is not in"), "{err}");
        std::fs::write(bin.join("llama-batched-bench"), "").unwrap();
        for d in [dir.path().to_path_buf(), bin.clone()] {
            let tools = LlamaTools::find(&d).unwrap();
            assert_eq!(tools.bench, bin.join("llama-bench"));
        }
    }

    #[tokio::test]
    async fn a_failing_tool_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let tools = LlamaTools {
            bench: PathBuf::from("/bin/false"),
            batched_bench: dir.path().join("absent"),
        };
        let err = llama_bench(&tools, Path::new("m.gguf"), 2)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/bin/false failed"), "{err}");
        let err = batched_bench(&tools, Path::new("m.gguf"), 2)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot start it"), "{err}");
        assert!(err.contains("llama-limit"), "{err}");
    }
}
