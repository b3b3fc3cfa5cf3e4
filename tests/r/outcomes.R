# Reference output for tests/test_outcomes.py: the binary outcome's Wilson interval (R's
# prop.test without continuity correction gives the Wilson score interval) and exact tests
# (fisher.test: Fisher's for 2 x 2, Fisher–Freeman–Halton for r x 2), and the continuous
# outcome's median and quartiles (quantile type 7, R's default). Run from the repository
# root with
#   Rscript tests/r/outcomes.R > tests/fixtures/r/outcomes.json
# (R 4.2.2 and jsonlite from Debian bookworm).
suppressPackageStartupMessages(library(jsonlite))

shares <- list(c(7, 12), c(0, 5), c(5, 5), c(1, 30), c(13, 20))
wilson <- lapply(shares, function(s) {
  list(events = s[1], n = s[2],
       ci = unname(prop.test(s[1], s[2], correct = FALSE)$conf.int[1:2]))
})
tables <- list(
  two_groups = rbind(c(7, 3), c(2, 8)),
  three_groups = rbind(c(7, 3), c(2, 8), c(4, 4)),
  four_groups = rbind(c(1, 5), c(6, 1), c(3, 3), c(0, 6)),
  sparse = rbind(c(1, 0), c(0, 2), c(2, 1))
)
exact <- lapply(tables, function(t) list(events = t[, 1], others = t[, 2],
                                         p = fisher.test(t)$p.value))
samples <- list(c(3, 1, 4, 1, 5, 9, 2, 6), c(12.5), c(10, 20), c(2.5, 7, 7, 30, 41, 0.5, 18))
spread <- lapply(samples, function(x) {
  q <- quantile(x, c(0.25, 0.5, 0.75), type = 7)
  list(values = x, q1 = unname(q[1]), median = unname(q[2]), q3 = unname(q[3]))
})
cat(toJSON(list(wilson = wilson, exact = exact, spread = spread), auto_unbox = TRUE,
           digits = NA, pretty = TRUE), "\n")
