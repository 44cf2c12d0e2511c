//! End to end: the real `dln` binary in a tmux pseudo-terminal with the embedded model on the
//! tiny example. Wait for the first candidates, pause, pin a candidate, edit a template (first an
//! invalid edit, refused in place at its line; then a valid one), resume, quit — then check that
//! the run directory's events and checkpoint record the pin and the edit, that the terminal left
//! the alternate screen, and that the workbench idles without burning CPU.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::run::{ok, read_json, result, resume, run_dir, signal, train, watch};
use common::tmux::{dln_line, quote, DlnLine, Tmux};
use common::{example, test_model};

/// `dln` with its data directory in `tmp` and no user config; the caller adds the rest.
fn in_home(tmp: &Path) -> DlnLine {
    dln_line()
        .env("DLN_DATA", tmp.join("data"))
        .env("DLN_CONFIG", tmp.join("no-config.toml"))
}

/// [`in_home`] on the test model.
fn workbench(tmp: &Path) -> DlnLine {
    in_home(tmp).env("DLN_MODEL", test_model())
}

/// `line` made `dln tui examples/tiny.toml --out OUT --set …`.
fn tui_tiny(line: DlnLine, out: &Path, sets: &[&str]) -> DlnLine {
    let line = line
        .arg("tui")
        .arg(example("tiny.toml"))
        .arg("--out")
        .arg(out);
    sets.iter()
        .fold(line, |line, set| line.args(["--set", set]))
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The pid of a child process of `parent` (the shell in the pane runs `env` → `dln`), from /proc.
fn child_of(parent: &str) -> Option<String> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.filter_map(Result::ok).find_map(|e| {
        let pid = e.file_name().to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .to_string();
        (ppid == parent).then_some(pid)
    })
}

/// The `done/total` after `label` on the screen (`propose L1 3/5`).
fn stage_counter(screen: &str, label: &str) -> Option<(usize, usize)> {
    let rest = &screen[screen.find(label)? + label.len()..];
    let (done, rest) = rest.split_once('/')?;
    let total: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((done.trim().parse().ok()?, total.parse().ok()?))
}

#[test]
fn workbench_pause_pin_edit_resume_quit() {
    let (tmp, out) = run_dir();
    let sets = ["train.iterations=4", "train.num_candidates=6"];
    let command = tui_tiny(workbench(tmp.path()), &out, &sets).then("sleep 120");
    let tmux = Tmux::start("live", &command);
    let slow = Duration::from_secs(600);
    let quick = Duration::from_secs(20);

    // 0. The status line's stage counter moves as requests finish: proposing 5 candidates shows
    // a count strictly between 0 and 5 while the proposals are generated one by one.
    let (moving, _) = tmux.wait_for("a moving propose counter", slow, |s| {
        stage_counter(s, "propose L1 ").is_some_and(|(done, total)| done > 0 && done < total)
    });
    assert!(moving.contains(" RUNNING "), "{moving}");

    // 1. The first candidates appear (model loaded, forward pass and proposals done).
    let (_, t_first) = tmux.wait_for("the first candidates", slow, |s| {
        s.contains(" candidates · ")
    });
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the workbench uses the alternate screen"
    );

    // 2. Pause: "PAUSING…" shows at once, "PAUSED" when the stage ends.
    tmux.keys(&["Space"]);
    let (_, t_key) = tmux.wait_for("pausing", quick, |s| {
        s.contains("PAUSING…") || s.contains("PAUSED")
    });
    tmux.wait_for("paused", slow, |s| s.contains(" PAUSED "));

    // Idle while paused: the workbench (and the waiting engine) use almost no CPU.
    let pane_pid = tmux.display("#{pane_pid}");
    let dln_pid = child_of(&pane_pid).unwrap_or_default();
    let idle_cpu = match cpu_seconds(&dln_pid) {
        Some(before) => {
            std::thread::sleep(Duration::from_secs(3));
            let after = cpu_seconds(&dln_pid).unwrap_or(before);
            Some((after - before) / 3.0)
        }
        None => None,
    };

    // 3. Pin the second candidate from the Candidates pane.
    tmux.keys(&["Tab", "Tab", "Down", "p"]);
    tmux.wait_for("the pin", quick, |s| s.contains("◆ pinned"));

    // Resize to 80×24 (one pane at a time behind tabs) and back (the 2×2 grid).
    tmux.cmd(&["resize-window", "-t", "wb", "-x", "80", "-y", "24"]);
    tmux.wait_for("the tabbed layout", quick, |s| {
        s.contains(" 1 Layers │ 2 Hidden states")
    });
    // Number keys jump to the panes, as the tabs are numbered; the footer keeps help and quit.
    tmux.keys(&["4"]);
    let (metrics, _) = tmux.wait_for("the Metrics tab", quick, |s| s.contains("▌ 4 Metrics"));
    assert!(
        metrics.contains("? help") && metrics.contains("q quit"),
        "{metrics}"
    );
    tmux.keys(&["1"]);
    tmux.wait_for("the Layers tab", quick, |s| s.contains("▌ 1 Layers"));
    tmux.cmd(&["resize-window", "-t", "wb", "-x", "120", "-y", "40"]);
    tmux.wait_for("the grid layout", quick, |s| {
        !s.contains(" 1 Layers │") && s.contains("Metrics")
    });

    // 4. Edit the forward template: an invalid edit is refused in place, at its line...
    tmux.keys(&["t"]);
    tmux.wait_for("the template chooser", quick, |s| {
        s.contains("Which template?")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the editor", quick, |s| s.contains("Edit forward template"));
    // The line above the closing `"""`: the body's last line.
    tmux.keys(&["M->", "Up", "Up", "End"]);
    tmux.text(" {% if %}");
    tmux.keys(&["C-s"]);
    let (err_screen, _) = tmux.wait_for("the template error", quick, |s| s.contains("✗ line"));
    assert!(
        err_screen.contains("line "),
        "the error names its line:\n{err_screen}"
    );
    assert!(
        err_screen.contains("{% if %}"),
        "the typed text is kept:\n{err_screen}"
    );
    // ...switching away and back keeps it...
    tmux.keys(&["Escape"]);
    tmux.wait_for("the editor closed", quick, |s| {
        !s.contains("Edit forward template")
    });
    tmux.keys(&["t", "1"]);
    tmux.wait_for("the kept edit", quick, |s| {
        s.contains("{% if %}") && s.contains("✗ line")
    });
    // ...then discard it and make a valid edit, which the engine applies.
    tmux.keys(&["C-g"]);
    tmux.wait_for("the discarded edit", quick, |s| !s.contains("{% if %}"));
    tmux.keys(&["M-<"]);
    tmux.text("# edited in the workbench");
    tmux.keys(&["Enter", "C-s"]);
    tmux.wait_for("the template applied", slow, |s| {
        s.contains("applied") && !s.contains("Edit forward template")
    });

    // 5. Resume.
    tmux.keys(&["Space"]);
    tmux.wait_for("running", quick, |s| {
        s.contains(" RUNNING ") || s.contains(" FINISHED ")
    });

    // 6. Quit: confirm, checkpoint, leave.
    tmux.keys(&["q"]);
    let (s, _) = tmux.wait_for("the confirmation or the exit", quick, |s| {
        s.contains("Stop it and quit?") || s.contains("EXIT=")
    });
    if s.contains("Stop it and quit?") {
        tmux.keys(&["y"]);
    }
    let (end, t_stop) = tmux.wait_for("the exit", slow, |s| s.contains("EXIT="));
    // 0 when the run had finished, 3 (stopped early, resumable) when quitting stopped it.
    assert!(
        (end.contains("EXIT=0") && end.contains("run finished"))
            || (end.contains("EXIT=3") && end.contains("dln resume")),
        "clean exit:\n{end}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert!(
        !end.contains("┌"),
        "no workbench left on the normal screen:\n{end}"
    );

    // 7. The run directory records the pin and the edit.
    let events = common::events(&out);
    let pinned = events
        .iter()
        .find(|e| e["event"] == "prompt_pinned")
        .and_then(|e| e["prompt"].as_str())
        .expect("a prompt_pinned event")
        .to_string();
    let proposed: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "candidates_proposed")
        .flat_map(|e| e["candidates"].as_array().into_iter().flatten())
        .filter_map(|c| c["prompt"].as_str())
        .collect();
    assert!(
        proposed.contains(&pinned.as_str()),
        "the pinned prompt is one of the candidates"
    );
    let replaced = events
        .iter()
        .find(|e| e["event"] == "template_replaced")
        .expect("a template_replaced event");
    assert_eq!(replaced["role"], "forward");
    assert!(replaced["source"]
        .as_str()
        .unwrap_or("")
        .starts_with("# edited in the workbench"));
    assert!(
        !events.iter().any(|e| e["event"] == "template_replaced"
            && e["source"].as_str().unwrap_or("").contains("{% if %}")),
        "the invalid template never reached the run"
    );
    let checkpoint = read_json(&out.join("checkpoint.json"));
    let state = &checkpoint["state"];
    assert_eq!(state["pinned"][0], true, "checkpoint records the pin");
    assert_eq!(state["prompts"][0], pinned.as_str());
    let edited = state["edited_templates"][0].to_string();
    assert!(
        edited.contains("edited in the workbench"),
        "checkpoint records the edit: {edited}"
    );

    // 8. `dln replay` on the same directory shows the pinned prompt, read-only, with a scrubber.
    let replay = Tmux::start(
        "replay",
        &in_home(tmp.path()).arg("replay").arg(&out).then("sleep 60"),
    );
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let head: String = words(&pinned).chars().take(24).collect();
    let (s, _) = replay.wait_for("the replay", quick, |s| s.contains(" REPLAY "));
    assert!(s.contains("◆ pinned"), "{s}");
    assert!(
        words(&s).contains(&head),
        "the pinned prompt is shown:\n{s}"
    );
    replay.keys(&["["]);
    replay.wait_for("the scrubber moved", quick, |s| s.contains("iteration "));
    replay.keys(&["p"]);
    replay.wait_for("the read-only notice", quick, |s| {
        s.contains("read-only replay")
    });
    replay.keys(&["q"]);
    replay.wait_for("the replay exit", quick, |s| s.contains("EXIT=0"));

    eprintln!(
        "e2e: first candidates after {:.1}s; key to visible change {} ms; stop to exit {:.1}s; idle CPU while paused {}",
        t_first.as_secs_f64(),
        t_key.as_millis(),
        t_stop.as_secs_f64(),
        idle_cpu.map(|c| format!("{:.1}%", c * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    if let Some(c) = idle_cpu {
        assert!(c < 0.05, "paused workbench used {:.1}% CPU", c * 100.0);
    }
}

/// A panic inside the workbench (injected at a frame with `DLN_FAULT`) gives the terminal back —
/// no alternate screen, no raw mode, the panic message readable — and leaves a run directory
/// that `dln resume` finishes.
#[test]
fn a_panic_in_the_workbench_restores_the_terminal_and_leaves_a_resumable_run() {
    let (tmp, out) = run_dir();
    let faulty = workbench(tmp.path()).env("DLN_FAULT", "tui_frame:8:panic");
    let command = tui_tiny(faulty, &out, &["train.iterations=2"])
        .then("stty -a | grep -o ' -icanon\\| icanon' | head -1 | sed 's/^/MODE=/'; sleep 120");
    let tmux = Tmux::start("panic", &command);
    let (end, _) = tmux.wait_for("the exit after the panic", Duration::from_secs(600), |s| {
        s.contains("MODE=")
    });
    assert!(
        end.contains("injected fault at tui_frame"),
        "the panic message shows:\n{end}"
    );
    assert!(!end.contains("EXIT=0"), "a panic is not a success:\n{end}");
    assert!(
        end.contains("MODE= icanon"),
        "raw mode is off again:\n{end}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "left the alternate screen"
    );
    assert!(
        out.join("config.toml").is_file(),
        "the run directory was written"
    );

    let resumed = resume(&out)
        .env("DLN_DATA", tmp.path().join("data"))
        .output()
        .expect("dln resume");
    ok(resumed, "the run resumes after the panic");
    assert!(out.join("result.json").is_file());
}

/// `dln tui --resume` on a run stopped headless: the workbench shows the run's past, continues
/// it to its end, and the run directory ends finished.
#[test]
fn the_workbench_resumes_a_stopped_run() {
    let (tmp, out) = run_dir();
    // Stop a headless run after its first checkpoint.
    let mut child = train(&example("tiny.toml"), &out, &["train.iterations=2"])
        .env("DLN_DATA", tmp.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dln train");
    let checkpointed =
        |lines: &[String]| lines.iter().any(|l| l.contains("\"checkpoint_written\""));
    assert!(
        watch(&mut child, &out, Duration::from_secs(600), checkpointed),
        "no checkpoint"
    );
    signal(&child, "INT");
    let status = child.wait().expect("dln train ends");
    assert_eq!(status.code(), Some(3), "stopped early at a stage boundary");

    let command = workbench(tmp.path())
        .args(["tui", "--resume"])
        .arg(&out)
        .then("sleep 120");
    let tmux = Tmux::start("resume", &command);
    let slow = Duration::from_secs(600);
    // The past is shown at once: the first iteration's candidates and dev accuracy.
    tmux.wait_for("the run's history", Duration::from_secs(60), |s| {
        s.contains("Layer 1") && s.contains("best dev")
    });
    // (The history ends with the stop's FINISHED; wait for the resumed run's own end.)
    let start = Instant::now();
    while !std::fs::read_to_string(out.join("result.json"))
        .unwrap_or_default()
        .contains("\"stopped_early\": false")
    {
        assert!(start.elapsed() < slow, "the resumed run did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.wait_for("the end of the resumed run", slow, |s| {
        s.contains(" FINISHED ")
    });
    tmux.keys(&["q"]);
    let (end, _) = tmux.wait_for("the exit", Duration::from_secs(60), |s| s.contains("EXIT="));
    assert!(
        end.contains("EXIT=0") && end.contains("run finished"),
        "{end}"
    );
    let result = result(&out);
    assert_eq!(result["stopped_early"], false);
    assert_eq!(result["iterations"], 2);
}

/// `E` hands the terminal to `$EDITOR` (here a script that records what it was given and writes
/// a new prompt), takes it back, and applies the saved text as the in-app editor's Ctrl-S would;
/// `y` puts the prompt on the clipboard with OSC 52 (tmux, with `set-clipboard on`, keeps it as
/// a paste buffer); `z` zooms the focused pane and back.
#[test]
fn external_editor_clipboard_and_zoom() {
    let (tmp, out) = run_dir();
    let seen = tmp.path().join("seen.txt");
    let editor = tmp.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\ncp \"$1\" {seen}\nprintf 'EDITED IN EDITOR: answer with the letter.\\n' > \"$1\"\n",
            seen = quote(&seen)
        ),
    )
    .expect("write the editor script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let with_editor = workbench(tmp.path())
        .env("EDITOR", &editor)
        .env("VISUAL", "");
    let command = tui_tiny(with_editor, &out, &["train.iterations=3"]).then("sleep 120");
    let tmux = Tmux::start("editor", &command);
    tmux.cmd(&["set-option", "-g", "set-clipboard", "on"]);
    let slow = Duration::from_secs(600);
    let quick = Duration::from_secs(20);
    tmux.wait_for("the first candidates", slow, |s| {
        s.contains(" candidates · ")
    });
    tmux.keys(&["Space"]);
    tmux.wait_for("paused", slow, |s| s.contains(" PAUSED "));
    let prompt = common::events(&out)
        .iter()
        .find(|e| e["event"] == "run_started")
        .and_then(|e| e["layers"][0]["prompt"].as_str().map(str::to_string))
        .expect("the starting prompt");

    // y: the Layers pane's prompt to the clipboard.
    tmux.keys(&["y"]);
    tmux.wait_for("the copy notice", quick, |s| {
        s.contains("copied the layer's prompt")
    });
    let buffer = String::from_utf8_lossy(&tmux.cmd(&["show-buffer"]).stdout).into_owned();
    assert_eq!(buffer, prompt, "the clipboard holds the prompt");

    // E: the editor gets the prompt; what it saves becomes the layer's prompt.
    tmux.keys(&["E"]);
    tmux.wait_for("the edited prompt", slow, |s| {
        s.contains("EDITED IN EDITOR") && s.contains(" PAUSED ")
    });
    assert_eq!(
        std::fs::read_to_string(&seen).expect("the editor ran"),
        prompt
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the workbench took the terminal back"
    );
    // The workbench still takes keys: z zooms the Layers pane over the whole screen and back.
    tmux.keys(&["z"]);
    tmux.wait_for("the zoomed pane", quick, |s| {
        s.contains("Layers") && !s.contains("Metrics")
    });
    tmux.keys(&["z"]);
    tmux.wait_for("every pane", quick, |s| s.contains("Metrics"));

    tmux.keys(&["q"]);
    let (s, _) = tmux.wait_for("the confirmation or the exit", quick, |s| {
        s.contains("Stop it and quit?") || s.contains("EXIT=")
    });
    if s.contains("Stop it and quit?") {
        tmux.keys(&["y"]);
    }
    tmux.wait_for("the exit", slow, |s| s.contains("EXIT="));
    let events = common::events(&out);
    let replaced = events
        .iter()
        .find(|e| e["event"] == "prompt_replaced")
        .expect("a prompt_replaced event");
    assert_eq!(
        replaced["prompt"],
        "EDITED IN EDITOR: answer with the letter."
    );
}

/// `b` in `dln replay` as a person uses it: step back one iteration, ask for a branch, confirm;
/// the workbench reopens on the new run, live and paused, its past shown and the branch noted;
/// quitting stops it resumable. The branch sits beside its parent and names it.
#[test]
fn a_replay_branches_into_a_paused_live_run() {
    let (tmp, out) = run_dir();
    ok(
        train(&example("tiny.toml"), &out, &["train.iterations=2"])
            .env("DLN_DATA", tmp.path().join("data"))
            .output()
            .expect("dln train"),
        "train the parent",
    );
    let command = workbench(tmp.path())
        .arg("replay")
        .arg(&out)
        .then("sleep 120");
    let tmux = Tmux::start("branch", &command);
    tmux.wait_for("the replay", Duration::from_secs(60), |s| {
        s.contains("REPLAY") && s.contains("b branch")
    });
    tmux.keys(&["["]);
    tmux.keys(&["b"]);
    let (asked, _) = tmux.wait_for("the question", Duration::from_secs(10), |s| {
        s.contains("Branch a new run after iteration")
    });
    assert!(asked.contains("This run is left as it is."), "{asked}");
    let at: usize = asked
        .split("Branch a new run after iteration ")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .and_then(|n| n.trim().parse().ok())
        .expect("the iteration asked about");
    tmux.keys(&["y"]);
    tmux.wait_for(
        "the branch, live and paused",
        Duration::from_secs(300),
        |s| s.contains(" PAUSED ") && s.contains("branch of"),
    );
    tmux.keys(&["q"]);
    tmux.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Stop it and quit?")
    });
    tmux.keys(&["y"]);
    let (end, _) = tmux.wait_for("the exit", Duration::from_secs(120), |s| {
        s.contains("EXIT=")
    });
    assert!(
        end.contains("EXIT=3") && end.contains("dln resume"),
        "{end}"
    );

    let branch = std::fs::read_dir(tmp.path())
        .expect("the parent's directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("branch.json").is_file())
        .expect("a branch beside its parent");
    let record = read_json(&branch.join("branch.json"));
    assert_eq!(record["iteration"], at);
    assert_eq!(
        read_json(&branch.join("checkpoint.json"))["state"]["iteration"],
        at
    );
    assert!(
        std::fs::read_to_string(out.join("events.jsonl"))
            .unwrap()
            .lines()
            .all(|l| !l.contains("\"branched\"")),
        "the parent's log is left alone"
    );
}
