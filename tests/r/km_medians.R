# Reference output for tests/test_survival.py: Kaplan–Meier medians where a curve sits at
# exactly 50%. R's printed survfit table (summary(fit)$table, as survminer and lifelines)
# takes the first time at 50% unless the curve later drops below it (then the midpoint of
# the flat); quantile.survfit takes the midpoint also when the flat runs to the last
# follow-up. Run from the repository root with
#   Rscript tests/r/km_medians.R > tests/fixtures/r/km_medians.json
# (R 4.2.2, survival 3.5-3 and jsonlite from Debian bookworm).
suppressPackageStartupMessages({library(survival); library(jsonlite)})

sets <- list(
  plateau_to_the_end = data.frame(time = c(2, 4, 6, 7), status = c(1, 1, 0, 0)),
  two_patients = data.frame(time = c(1.6, 64), status = c(1, 0)),
  plateau_then_drop = data.frame(time = c(2, 4, 6, 8, 9, 11), status = c(1, 1, 1, 0, 1, 1)),
  no_plateau = data.frame(time = c(1, 3, 3, 5, 8, 12, 13), status = c(1, 1, 0, 1, 1, 0, 1))
)
out <- list()
for (name in names(sets)) {
  d <- sets[[name]]
  for (conf in c("log-log", "log")) {
    fit <- survfit(Surv(time, status) ~ 1, data = d, conf.type = conf)
    table <- summary(fit)$table
    q <- quantile(fit, 0.5)
    out[[paste(name, conf)]] <- list(
      data = d, conf_type = conf,
      table = unname(as.list(table[c("median", "0.95LCL", "0.95UCL")])),
      quantile = c(unname(q$quantile), unname(q$lower), unname(q$upper)))
  }
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, dataframe = "columns",
           na = "null"), "\n")
