# Reference output for tests/test_cox_edges.py: survival::coxph (Efron ties) on data sets
# where a default-precision fit falls short. Run from the repository root with
#   Rscript tests/r/cox_edges.R > tests/fixtures/r/cox_edges.json
# (R 4.2.2, survival 3.5-3 and jsonlite from Debian bookworm).
suppressPackageStartupMessages({library(survival); library(jsonlite)})

sets <- list(
  # aml from the survival package, with age and sex made up deterministically
  aml_covariates = within(aml, {
    group <- as.numeric(x == "Nonmaintained")
    age <- 40 + (seq_along(time) * 7) %% 31
    male <- as.numeric(seq_along(time) %% 3 == 0)
  })[, c("time", "status", "group", "age", "male")],
  # a large but finite hazard ratio: one death outside the group among many inside
  near_separation = data.frame(
    time = c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
    status = c(1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1),
    group = c(1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0),
    age = c(61, 55, 70, 48, 66, 59, 52, 63, 71, 45, 58, 67)),
  # heavy ties
  ties = data.frame(
    time = c(2, 2, 2, 3, 3, 5, 5, 5, 5, 8, 8, 9, 12, 12),
    status = c(1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0),
    group = c(1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0),
    age = c(50, 62, 71, 44, 58, 66, 53, 60, 49, 72, 57, 64, 68, 47))
)

out <- list()
for (name in names(sets)) {
  d <- sets[[name]]
  terms <- setdiff(names(d), c("time", "status"))
  fit <- coxph(as.formula(paste("Surv(time, status) ~", paste(terms, collapse = " + "))),
               data = d, ties = "efron")
  s <- summary(fit)
  out[[name]] <- list(
    data = d, terms = terms, coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))),
    ci_low = unname(s$conf.int[, "lower .95"]), ci_high = unname(s$conf.int[, "upper .95"]),
    p = unname(s$coefficients[, "Pr(>|z|)"]), loglik = fit$loglik[2])
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, dataframe = "columns"), "\n")
