// Owns the script of a report page that draws its charts: it reads each chart's JSON (charts.ts)
// and hands it to uPlot, inlined before it in the page (html.ts).

/**
 * Runs in the report page after uPlot: draws every `.chart` from its JSON. Values carry their
 * unit on the y axis and in the legend; ms since the start read as ms or s.
 */
export const CHART_SCRIPT = `
(function () {
  'use strict';
  function ms(v) {
    if (v === null || v === undefined || !isFinite(v)) return '-';
    var a = Math.abs(v);
    if (a >= 10000) return (Math.round(v / 100) / 10) + ' s';
    if (a >= 1000) return (Math.round(v / 10) / 100) + ' s';
    if (a >= 10) return Math.round(v) + ' ms';
    return (Math.round(v * 100) / 100) + ' ms';
  }
  function number(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return '-';
    var n = Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100;
    return unit ? n + ' ' + unit : String(n);
  }
  function formatter(unit) { return unit === 'ms' ? ms : function (v) { return number(v, unit); }; }
  var figures = document.querySelectorAll('figure.chart');
  for (var f = 0; f < figures.length; f++) draw(figures[f]);
  function draw(figure) {
    var spec = JSON.parse(figure.querySelector('script.chart-data').textContent);
    var target = figure.querySelector('.plot');
    var yFormat = formatter(spec.y.unit);
    var x = spec.x;
    var xAxis = { label: x.label, labelSize: 20, stroke: '#3b4556', grid: { stroke: '#e3e8ef' } };
    var xScale = { time: false };
    var xValue;
    if (x.kind === 'category') {
      xAxis.splits = function () { return x.splits; };
      xAxis.values = function () { return x.categories; };
      xAxis.grid = { show: false };
      xScale.range = function () { return x.range; };
      xValue = function (u, v) {
        if (v === null || v === undefined) return '-';
        var k = x.splits.length > 1 ? x.splits[1] - x.splits[0] : 1;
        var g = Math.round((v - x.splits[0]) / k);
        return x.categories[Math.max(0, Math.min(x.categories.length - 1, g))];
      };
    } else {
      var xFormat = x.kind === 'ms' ? ms : function (v) { return number(v, x.unit || ''); };
      xAxis.values = function (u, ticks) { return ticks.map(xFormat); };
      xValue = function (u, v) { return xFormat(v); };
      if (x.range) xScale.range = function () { return x.range; };
    }
    var series = [{ label: x.kind === 'category' ? 'group' : x.label || 'x', value: xValue }];
    for (var i = 0; i < spec.series.length; i++) {
      var s = spec.series[i];
      var one = { label: s.label, stroke: s.color, width: 2, value: function (u, v) { return yFormat(v); }, spanGaps: true };
      if (s.kind === 'bars') {
        one.paths = uPlot.paths.bars({ size: [0.85, 120], align: 0 });
        one.fill = s.color + 'cc';
        one.width = 1;
        one.points = { show: false };
      } else if (s.kind === 'step') {
        one.paths = uPlot.paths.stepped({ align: 1 });
        one.points = { show: false };
      } else {
        one.points = { show: false };
      }
      series.push(one);
    }
    // Room for the longest tick label (each carries its unit) beside the axis label.
    function ySize(u, values) {
      var longest = 0;
      for (var t = 0; values && t < values.length; t++) longest = Math.max(longest, String(values[t]).length);
      return Math.max(50, longest * 7 + 34);
    }
    var width = Math.max(480, Math.min(1140, target.clientWidth || 1100));
    new uPlot({
      width: width,
      height: 300,
      scales: { x: xScale, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.08 : 1]; } } },
      axes: [xAxis, { label: spec.y.label, labelSize: 20, size: ySize, stroke: '#3b4556', grid: { stroke: '#e3e8ef' }, values: function (u, ticks) { return ticks.map(yFormat); } }],
      series: series,
      legend: { live: true },
    }, spec.data, target);
  }
})();
`;
