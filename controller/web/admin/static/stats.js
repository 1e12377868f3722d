// The statistics page's charts (ECharts, drawn as SVG): served tickets per window, and
// arrivals by weekday and hour as a heat map. Their data is in each box's data attribute.
"use strict";
for (const box of document.querySelectorAll(".chart[data-bars]")) {
  const d = JSON.parse(box.dataset.bars);
  echarts.init(box, null, { renderer: "svg" }).setOption({
    animation: false, grid: { left: 40, right: 8, top: 12, bottom: 28 }, tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: d.keys }, yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", data: d.values, barMaxWidth: 36, itemStyle: { color: "#0b57a4" } }],
  });
}
const DAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
for (const box of document.querySelectorAll(".chart[data-heat]")) {
  const rows = JSON.parse(box.dataset.heat);
  const data = [];
  let most = 0;
  rows.forEach((hours, day) => hours.forEach((n, hour) => { data.push([hour, day, n]); most = Math.max(most, n); }));
  echarts.init(box, null, { renderer: "svg" }).setOption({
    animation: false, grid: { left: 48, right: 8, top: 8, bottom: 72 }, tooltip: {},
    xAxis: { type: "category", data: [...Array(24).keys()].map(h => `${h}时`) },
    yAxis: { type: "category", data: DAYS },
    visualMap: { min: 0, max: Math.max(most, 1), orient: "horizontal", left: "center", bottom: 0,
                 itemHeight: 80, inRange: { color: ["#eef4fb", "#0b57a4"] } },
    series: [{ type: "heatmap", data }],
  });
}
