/*
 * bench_stats.h - small statistics for `scansim bench` (the median of a few runs).
 */
#ifndef SCANSIM_BENCH_STATS_H
#define SCANSIM_BENCH_STATS_H

/** Median of n values (NaN values are skipped; NaN if none). The array is reordered. */
double bench_median(double *v, int n);

#endif /* SCANSIM_BENCH_STATS_H */
