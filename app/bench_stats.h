/*
 * bench_stats.h - small statistics for `scansim bench` (the median of a few runs).
 */
#ifndef SCANSIM_BENCH_STATS_H
#define SCANSIM_BENCH_STATS_H

/** Median of n values (NaN values are skipped; NaN if none). The array is reordered. */
double bench_median(double *v, int n);

/** --report: the rounds' bars and the --json figures (summary_json) as one offline HTML
 *  file (bench_report.c). reg and p99 hold n_points x repeat values, point-major, each
 *  point named by labels[p] ("10000 devices, mosquitto"); raw one per round (NaN = not
 *  measured). 0 or a negative dash_err (said). */
int bench_report_write(const char *path, const char *summary_json, int repeat, const double *raw,
                       int n_points, const char *const *labels, const double *reg,
                       const double *p99);

#endif /* SCANSIM_BENCH_STATS_H */
