# Reference output for tests/test_pooling_stress.py: I², prediction intervals and GLMM limits
# from metafor on 300 seeded random small sets and the k = 200 set of pooling_edges.R, with
# every tau² method the project offers. Run from the repository root with
#   Rscript tests/r/pooling_stress.R > tests/fixtures/r/pooling_stress.json
# (R 4.2.2, metafor 3.8-1 and jsonlite from Debian bookworm).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

sets <- list(k200 = list(x = ((1:200) * 7) %% 11, n = 10 + ((1:200) * 3) %% 20))
set.seed(20261203)
for (i in 1:300) {
  k <- sample(2:12, 1)
  n <- sample(1:30, k, replace = TRUE)
  x <- rbinom(k, n, runif(1, 0.05, 0.6))
  sets[[sprintf("stress_%03d", i)]] <- list(x = x, n = n)
}

fit <- function(expr) tryCatch(expr, error = function(e) list(error = conditionMessage(e)))
summarise <- function(res) {
  p <- predict(res, transf = transf.ilogit)
  list(estimate = unname(p$pred), ci_low = unname(p$ci.lb), ci_high = unname(p$ci.ub),
       pi_low = unname(p$pi.lb), pi_high = unname(p$pi.ub), tau2 = res$tau2, i2 = res$I2,
       beta = unname(res$beta[1]), se = res$se)
}
out <- list()
for (name in names(sets)) {
  x <- sets[[name]]$x; n <- sets[[name]]$n
  entry <- list(x = x, n = n)
  for (method in c("DL", "REML", "PM")) {
    entry[[paste0("logit_", tolower(method))]] <-
      fit(summarise(rma(measure = "PLO", xi = x, ni = n, method = method)))
  }
  # R's defaults stop REML's Fisher scoring once tau² moves by < 1e-5 and PM's root search at
  # a tolerance of 1.2e-4; the same fits run to convergence show what those stops cost.
  tight <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
  for (method in c("REML", "PM")) {
    entry[[paste0("logit_", tolower(method), "_converged")]] <-
      fit(summarise(rma(measure = "PLO", xi = x, ni = n, method = method, control = tight)))
  }
  entry$glmm <- fit(summarise(rma.glmm(measure = "PLO", xi = x, ni = n)))
  out[[name]] <- entry
}
cat(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), "\n")
