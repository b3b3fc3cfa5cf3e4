# Reference output for tests/test_cox_edges.py: one three-group data set fitted by
# survival::coxph (Efron ties) with each group as the reference. lifelines' optimiser failed
# ("could not be maximised") with radiotherapy or surgery as the reference; coxph fits all
# three, and the model is the same (hazard ratios reciprocal, one log likelihood). Run from
# the repository root with
#   Rscript tests/r/cox_reference.R > tests/fixtures/r/cox_reference.json
# (R 4.2.2, survival 3.5-3 and jsonlite from Debian bookworm).
suppressPackageStartupMessages({library(survival); library(jsonlite)})

d <- data.frame(
  time = c(3.2, 2.4, 0.5, 0.1, 0.1, 3.4, 7.4, 7.9, 9.9, 29.1, 12.8, 10.7, 27.5, 21.4, 2.9,
           15.0, 53.2, 14.1, 48.9),
  status = c(1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
  group = rep(c("none", "radiotherapy", "surgery"), times = c(5, 6, 8)))

out <- list(data = d, fits = list())
for (reference in c("none", "radiotherapy", "surgery")) {
  d$g <- relevel(factor(d$group), ref = reference)
  fit <- coxph(Surv(time, status) ~ g, data = d, ties = "efron")
  s <- summary(fit)
  out$fits[[reference]] <- list(
    terms = sub("^g", "", names(coef(fit))), coef = unname(coef(fit)),
    se = unname(sqrt(diag(vcov(fit)))), ci_low = unname(s$conf.int[, "lower .95"]),
    ci_high = unname(s$conf.int[, "upper .95"]), p = unname(s$coefficients[, "Pr(>|z|)"]),
    loglik = fit$loglik[2], iterations = fit$iter)
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, dataframe = "columns"), "\n")
