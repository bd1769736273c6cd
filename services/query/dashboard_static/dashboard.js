// Tenure's built-in dashboard: polls the query API with a read token and draws ECharts.
// The token comes from the URL fragment (#token=...), never from the server or the query
// string (fragments are not sent in requests or written to access logs).
"use strict";

(function () {
  const REFRESH_MS = 1000 * Number(new URLSearchParams(location.hash.slice(1)).get("refresh") || 5);
  const ENTRY_GROUPS = ["entry:connected_buyer", "entry:one_time_buyer", "entry:non_paying_user"];
  const GROUP_NAMES = {
    "entry:connected_buyer": "connected buyers",
    "entry:one_time_buyer": "one-time buyers",
    "entry:non_paying_user": "non-paying users",
    all: "everyone",
  };
  const COLORS = ["#2f6fdb", "#e0582b", "#2a9d58", "#8e44ad", "#c99a06"];
  const SEGMENTS = ["customer_and_user", "customer_only", "user_only", "prospect"];
  const STAGES = ["none", "new", "active", "at_risk", "churned", "resurrected"];
  const LEVELS = ["none", "micro", "weak", "strong", "super"];
  const SUPPRESSIONS = ["erased", "no_consent", "quiet_period"];
  const SUPPRESSION_COLORS = { erased: "#999999", no_consent: "#e0582b", quiet_period: "#c99a06" };

  const state = {
    charts: {},
    data: {},
    refreshes: 0,
    errors: [],
    pipelineHistory: [],
  };
  window.tenureDashboard = state;

  function token() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromHash) {
      sessionStorage.setItem("tenure-token", fromHash);
      return fromHash;
    }
    return sessionStorage.getItem("tenure-token");
  }

  function setStatus(text, isError) {
    const el = document.getElementById("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  async function api(path) {
    const reply = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
    const body = await reply.json();
    if (!reply.ok) {
      const error = new Error(body.error || JSON.stringify(body.detail || body));
      error.status = reply.status;
      throw error;
    }
    return body;
  }

  function chart(name) {
    if (!state.charts[name]) {
      state.charts[name] = echarts.init(document.getElementById("chart-" + name));
    }
    return state.charts[name];
  }

  function groupName(group) {
    return GROUP_NAMES[group] || group;
  }

  function bars(name, labels, values, color) {
    chart(name).setOption({
      grid: { left: 50, right: 20, top: 20, bottom: 40 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: labels, axisLabel: { interval: 0, fontSize: 11 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: "people", type: "bar", data: values, itemStyle: { color: color } }],
    });
  }

  function funnel(name, steps) {
    chart(name).setOption({
      tooltip: { trigger: "item", formatter: "{b}: {c}" },
      series: [{
        name: name,
        type: "funnel",
        sort: "none",
        left: "10%", width: "80%", top: 10, bottom: 10,
        label: { position: "inside", formatter: "{b}: {c}" },
        data: steps.map((s) => ({ name: s.step, value: s.count })),
      }],
    });
  }

  function kpis(summary) {
    const activation = summary.funnels.activation;
    const rate = activation[0].count ? (100 * activation[2].count / activation[0].count).toFixed(1) + "%" : "-";
    const items = [
      ["people", summary.persons],
      ["connected buyers (pay and use)", summary.segments.customer_and_user],
      ["one-time buyers (paid once, no use)", summary.one_time_buyers],
      ["non-paying users", summary.segments.user_only],
      ["repeat buyers", summary.buyer_kinds.repeat_buyer],
      ["super users", summary.super_users],
      ["sponsors (payer is not the user)", summary.sponsors],
      ["activated within the window", rate],
      ["as of", summary.as_of ? summary.as_of.slice(0, 16).replace("T", " ") : "-"],
    ];
    document.getElementById("kpis").innerHTML = items
      .map(([label, value]) => `<div class="kpi"><div class="value">${value}</div><div class="label">${label}</div></div>`)
      .join("");
  }

  function pipeline(summary) {
    const p = summary.pipeline;
    const at = Date.parse(p.read_at);
    const history = state.pipelineHistory;
    const previous = history[history.length - 1];
    const rate = previous && at > previous.at
      ? Math.max(0, (p.archived_events - previous.archived) / ((at - previous.at) / 1000))
      : 0;
    history.push({ at: at, archived: p.archived_events, rate: rate,
      backlog: p.backlog.persons + p.backlog.devices, unpublished: p.transitions_unpublished });
    if (history.length > 120) history.shift();
    const replay = p.last_replay
      ? `${p.last_replay.events} events, ${p.last_replay.completed_at.slice(0, 19).replace("T", " ")}`
      : "none yet";
    document.getElementById("pipeline").innerHTML = [
      ["events archived", p.archived_events],
      ["archived/s", rate.toFixed(1)],
      ["derive backlog (persons, devices)", `${p.backlog.persons}, ${p.backlog.devices}`],
      ["transitions emitted", p.transitions_emitted],
      ["transitions not yet published", p.transitions_unpublished],
      ["latest event time projected", p.projection_max_event_time ? p.projection_max_event_time.slice(0, 19).replace("T", " ") : "-"],
      ["last replay", replay],
    ].map(([label, value]) => `<span>${label}: <b>${value}</b></span>`).join("");
    chart("pipeline").setOption({
      grid: { left: 60, right: 60, top: 30, bottom: 30 },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "time" },
      yAxis: [{ type: "value", name: "events/s" }, { type: "value", name: "queued" }],
      series: [
        { name: "archived events/s", type: "line", showSymbol: false, data: history.map((h) => [h.at, h.rate]) },
        { name: "derive backlog", type: "line", yAxisIndex: 1, showSymbol: false, data: history.map((h) => [h.at, h.backlog]) },
        { name: "unpublished transitions", type: "line", yAxisIndex: 1, showSymbol: false, data: history.map((h) => [h.at, h.unpublished]) },
      ],
    });
  }

  // Audiences: members per audience, contactable and suppressed by reason (stacked), and the
  // daily entries (up) and exits (down) over all audiences, by the change's day.
  function audiences(summary) {
    const names = summary.audiences.map((a) => a.name);
    const series = [{ name: "contactable", type: "bar", stack: "members",
      itemStyle: { color: "#2a9d58" }, data: summary.audiences.map((a) => a.contactable) }];
    SUPPRESSIONS.forEach((reason) => series.push({
      name: "suppressed: " + reason.replace("_", " "), type: "bar", stack: "members",
      itemStyle: { color: SUPPRESSION_COLORS[reason] },
      data: summary.audiences.map((a) => a.suppressed[reason] || 0),
    }));
    chart("audience-sizes").setOption({
      grid: { left: 50, right: 20, top: 40, bottom: 40 },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, fontSize: 11 } },
      yAxis: { type: "value", minInterval: 1 },
      series: series,
    }, { notMerge: true });
    const byDay = {};
    summary.audience_flows.forEach((f) => {
      const day = byDay[f.day] || (byDay[f.day] = { entered: 0, exited: 0 });
      day.entered += f.entered;
      day.exited += f.exited;
    });
    const days = Object.keys(byDay).sort();
    chart("audience-flows").setOption({
      grid: { left: 50, right: 20, top: 30, bottom: 40 },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "category", data: days, axisLabel: { fontSize: 11 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: "entered", type: "bar", stack: "flow", itemStyle: { color: "#2f6fdb" },
          data: days.map((d) => byDay[d].entered) },
        { name: "exited", type: "bar", stack: "flow", itemStyle: { color: "#8e44ad" },
          data: days.map((d) => -byDay[d].exited) },
      ],
    }, { notMerge: true });
  }

  function drawSummary(summary) {
    kpis(summary);
    bars("segments", SEGMENTS, SEGMENTS.map((s) => summary.segments[s]), "#2f6fdb");
    bars("stages", STAGES, STAGES.map((s) => summary.stages[s]), "#2a9d58");
    bars("levels", LEVELS, LEVELS.map((s) => summary.levels[s]), "#8e44ad");
    const tiers = Object.keys(summary.tiers).sort();
    bars("tiers", tiers, tiers.map((t) => summary.tiers[t]), "#c99a06");
    funnel("activation-funnel", summary.funnels.activation);
    funnel("conversion-funnel", summary.funnels.conversion);
    pipeline(summary);
    audiences(summary);
  }

  // The CI band of a step curve as one polygon: along ci_high, then back along ci_low.
  function bandPolygon(curve) {
    const upper = [];
    const lower = [];
    curve.forEach((p, i) => {
      const next = i + 1 < curve.length ? curve[i + 1].day : p.day;
      upper.push([p.day, p.ci_high], [next, p.ci_high]);
      lower.push([p.day, p.ci_low], [next, p.ci_low]);
    });
    return upper.concat(lower.reverse());
  }

  function drawSurvival(survival) {
    const series = [];
    survival.groups.forEach((g, i) => {
      const color = COLORS[i % COLORS.length];
      const name = groupName(g.group);
      const polygon = bandPolygon(g.curve);
      series.push({
        name: name + " CI", type: "custom", silent: true, z: 1, tooltip: { show: false },
        data: g.curve.map((p) => [p.day, p.ci_low, p.ci_high]),
        encode: { x: 0, y: [1, 2] },
        renderItem: (params, api) => params.dataIndex !== 0 ? null : {
          type: "polygon",
          shape: { points: polygon.map((point) => api.coord(point)) },
          style: { fill: color, opacity: 0.15 },
        },
      });
      series.push({
        name: name, type: "line", step: "end", symbol: "none", z: 2,
        lineStyle: { color: color, width: 2 }, itemStyle: { color: color },
        data: g.curve.map((p) => [p.day, p.survival]),
        markLine: g.median_days === null ? undefined : {
          symbol: "none", label: { formatter: "median " + g.median_days + " d" },
          lineStyle: { color: color, type: "dashed" }, data: [{ xAxis: g.median_days }],
        },
      });
    });
    chart("survival").setOption({
      grid: { left: 50, right: 30, top: 40, bottom: 40 },
      tooltip: { trigger: "axis" },
      legend: { top: 0, data: survival.groups.map((g) => groupName(g.group)) },
      xAxis: { type: "value", name: "days", nameLocation: "middle", nameGap: 25 },
      yAxis: { type: "value", min: 0, max: 1, name: "still active" },
      series: series,
    }, { notMerge: true });
    const rows = survival.groups.map((g) => {
      const ci = g.median_ci && g.median_ci[0] !== null ? ` (${g.median_ci[0]} to ${g.median_ci[1] === null ? "-" : g.median_ci[1]})` : "";
      return `<tr><td>${groupName(g.group)}</td><td>${g.n}</td><td>${g.median_days === null ? "not reached" : g.median_days + " d" + ci}</td><td>${g.rmst_days === null || g.rmst_days === undefined ? "-" : g.rmst_days.toFixed(1) + " d"}</td></tr>`;
    });
    const logrank = survival.logrank ? ` log-rank p = ${survival.logrank.p_value.toFixed(3)}` : "";
    document.getElementById("medians").innerHTML =
      `<tr><th>group</th><th>people</th><th>median tenure (95% CI)</th><th>RMST</th></tr>${rows.join("")}`;
    document.getElementById("survival-note").textContent =
      `Kaplan-Meier, ${Math.round(100 * survival.confidence)}% CI (${survival.ci_transform}), as of ${survival.as_of}.${logrank}`;
  }

  function drawRetention(retention) {
    const cohorts = retention.groups.length ? retention.groups[0].cohorts : [];
    const weeks = Math.max(0, ...cohorts.map((c) => c.on.length));
    const data = [];
    cohorts.forEach((c, y) => c.on.forEach((share, x) => data.push([x, y, share])));
    chart("retention").setOption({
      grid: { left: 110, right: 30, top: 10, bottom: 80 },
      tooltip: { position: "top" },
      xAxis: { type: "category", name: "weeks since first engagement", nameLocation: "middle", nameGap: 25,
        data: Array.from({ length: weeks }, (_, i) => String(i)) },
      yAxis: { type: "category", data: cohorts.map((c) => `${c.cohort} (${c.size})`) },
      visualMap: { min: 0, max: 1, calculable: true, orient: "horizontal", left: "center", bottom: 0,
        inRange: { color: ["#f4f5f7", "#2f6fdb"] } },
      series: [{ name: "retention", type: "heatmap", data: data }],
    });
  }

  function drawCurve(name, result) {
    chart(name).setOption({
      grid: { left: 50, right: 20, top: 30, bottom: 40 },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "value", name: "days", nameLocation: "middle", nameGap: 25 },
      yAxis: { type: "value", min: 0, max: 1 },
      series: result.groups.map((g, i) => ({
        name: groupName(g.group), type: "line", step: "end", symbol: "none",
        itemStyle: { color: COLORS[i % COLORS.length] },
        data: g.curve.map((p) => [p.day, p.share]),
      })),
    });
    document.getElementById(name + "-note").textContent = result.groups
      .map((g) => `${groupName(g.group)}: ${(100 * g.rate).toFixed(1)}% of ${g.n} within ${result.window_days} days`)
      .join("; ");
  }

  // Churn calibration: mean prediction (x) against observed rate (y) per decile, with the
  // diagonal; the backtest is heavier than the other reads, so it refreshes every 12th tick.
  const CHURN_EVERY = 12;
  function drawChurnCalibration(result) {
    const points = result.deciles.map((d) => [d.mean_prediction, d.observed_rate, d.count]);
    chart("churn-calibration").setOption({
      grid: { left: 60, right: 20, top: 20, bottom: 50 },
      tooltip: { trigger: "item", formatter: (p) => p.seriesName === "deciles"
        ? `predicted ${p.value[0].toFixed(3)}, observed ${p.value[1].toFixed(3)} (${p.value[2]} people)`
        : "" },
      xAxis: { type: "value", min: 0, max: 1, name: "predicted P(silent next W days)", nameLocation: "middle", nameGap: 30 },
      yAxis: { type: "value", min: 0, max: 1, name: "observed" },
      series: [
        { name: "deciles", type: "line", symbolSize: 9, data: points, itemStyle: { color: COLORS[1] } },
        { name: "perfect", type: "line", symbol: "none", data: [[0, 0], [1, 1]],
          lineStyle: { type: "dashed", color: "#999" } },
      ],
    });
    document.getElementById("churn-note").textContent = result.people
      ? `${result.people} people scored on ${result.cut}, ${result.silent_next} went silent for ` +
        `${result.window_days} days; AUC ${result.auc ?? "-"}, Brier ${result.brier ?? "-"}.`
      : "Nobody to backtest yet (needs W days of history).";
  }

  async function refreshChurn() {
    if (state.refreshes % CHURN_EVERY !== 0 || state.churnMissing) return;
    try {
      state.data.churn = await api("/v1/churn/calibration");
      drawChurnCalibration(state.data.churn);
    } catch (error) {
      if (error.status !== 404) throw error;
      state.churnMissing = true; // this query service does not serve the churn API
      document.getElementById("churn-card").hidden = true;
    }
  }

  // Without the analytics API (/v1/tenure/*) its cards are hidden and a notice says why.
  function showAnalytics(which, available) {
    document.getElementById(which + "-note").closest("section").hidden = !available;
    if (!available) document.getElementById("analytics-missing").hidden = false;
  }

  async function refresh() {
    const summary = await api("/v1/dashboard/summary");
    state.data.summary = summary;
    drawSummary(summary);
    const analytics = summary.analytics;
    const groups = ENTRY_GROUPS.join(",");
    for (const which of ["survival", "retention", "activation", "conversion"]) {
      showAnalytics(which, analytics[which]);
    }
    if (analytics.survival) {
      state.data.survival = await api("/v1/tenure/survival?groups=" + encodeURIComponent(groups));
      drawSurvival(state.data.survival);
    }
    if (analytics.retention) {
      state.data.retention = await api("/v1/tenure/retention?groups=all");
      drawRetention(state.data.retention);
    }
    for (const which of ["activation", "conversion"]) {
      if (analytics[which]) {
        state.data[which] = await api(`/v1/tenure/${which}?groups=all`);
        drawCurve(which, state.data[which]);
      }
    }
    await refreshChurn();
  }

  async function tick() {
    try {
      await refresh();
      state.refreshes += 1;
      setStatus(`updated ${new Date().toLocaleTimeString()} (every ${REFRESH_MS / 1000} s)`);
    } catch (error) {
      state.errors.push(String(error.message || error));
      if (error.status === 401 || error.status === 403) {
        sessionStorage.removeItem("tenure-token");
        showTokenForm();
        setStatus("the token was refused: " + error.message, true);
        return;
      }
      setStatus("refresh failed: " + error.message + "; retrying", true);
    }
    setTimeout(tick, REFRESH_MS);
  }

  function showTokenForm() {
    const form = document.getElementById("token-form");
    form.hidden = false;
    form.querySelector("form").onsubmit = (event) => {
      event.preventDefault();
      const value = document.getElementById("token-input").value.trim();
      if (!value) return;
      location.hash = "token=" + encodeURIComponent(value);
      form.hidden = true;
      tick();
    };
  }

  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
  if (token()) {
    tick();
  } else {
    setStatus("a read token is needed", true);
    showTokenForm();
  }
})();
