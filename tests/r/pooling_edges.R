# Reference output for tests/test_pooling_edges.py: metafor's pooled proportions on the edge
# sets of issue 12. Run from the repository root with
#   Rscript tests/r/pooling_edges.R > tests/fixtures/r/pooling_edges.json
# (R 4.2.2, metafor 3.8-1 and jsonlite from Debian bookworm: r-cran-metafor, r-cran-jsonlite).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

sets <- list(
  all_single_zero_of_one = list(x = rep(0, 5), n = rep(1, 5)),
  all_single_one_of_one = list(x = rep(1, 5), n = rep(1, 5)),
  no_events = list(x = c(0, 0, 0), n = c(10, 20, 30)),
  all_events = list(x = c(10, 20, 30), n = c(10, 20, 30)),
  two_single = list(x = c(0, 1), n = c(1, 1)),
  one_study = list(x = 3, n = 10),
  one_outlier = list(x = c(0, 0, 0, 0, 10, 0, 1, 0, 0, 0, 0), n = rep(20, 11)),
  single_patients = list(x = c(1, 0, 0, 1, 0, 1, 0, 0, 0, 1), n = rep(1, 10)),
  one_large_many_tiny = list(x = c(40, rep(c(1, 0, 0), 7)), n = c(100, rep(1, 21))),
  mixed_small = list(x = c(1, 0, 2, 1, 0, 0, 1, 3), n = c(1, 1, 4, 2, 1, 1, 1, 4)),
  k200 = list(x = ((1:200) * 7) %% 11, n = 10 + ((1:200) * 3) %% 20)
)

# Random small sets, as a stress test of the GLMM (seeded, so the file is reproducible).
set.seed(20261202)
for (i in 1:40) {
  k <- sample(2:8, 1)
  n <- sample(1:6, k, replace = TRUE)
  x <- rbinom(k, n, runif(1, 0.05, 0.6))
  sets[[sprintf("random_%02d", i)]] <- list(x = x, n = n)
}

fit <- function(expr) {
  tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
}

summarise <- function(res, transf, targs = NULL) {
  p <- predict(res, transf = transf, targs = targs)
  list(estimate = unname(p$pred), ci_low = unname(p$ci.lb), ci_high = unname(p$ci.ub),
       pi_low = unname(p$pi.lb), pi_high = unname(p$pi.ub), tau2 = res$tau2,
       beta = unname(res$beta[1]), se = res$se)
}

out <- list()
for (name in names(sets)) {
  x <- sets[[name]]$x; n <- sets[[name]]$n
  out[[name]] <- list(
    x = x, n = n,
    freeman_tukey_dl = fit(summarise(rma(measure = "PFT", xi = x, ni = n, method = "DL"),
                                     transf.ipft.hm, list(ni = n))),
    logit_reml = fit(summarise(rma(measure = "PLO", xi = x, ni = n, method = "REML"),
                               transf.ilogit)),
    glmm = fit(summarise(rma.glmm(measure = "PLO", xi = x, ni = n), transf.ilogit))
  )
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), "\n")
