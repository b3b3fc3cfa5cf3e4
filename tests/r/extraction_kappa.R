# Reference output for tests/test_double_extraction.py: Cohen's kappa (psych::cohen.kappa,
# unweighted) and percent agreement per field of the HCC review's double extraction, with the
# comparison rules written out again here, independently of the Python code: a list is a set
# (sorted, blanks dropped), a number is its value rounded to the field's precision, a blank is
# a category of its own. Run from the repository root with
#   Rscript tests/r/extraction_kappa.R > tests/fixtures/r/extraction_kappa.json
# (R 4.2.2, psych 2.2.9 and jsonlite from Debian bookworm).
suppressPackageStartupMessages({library(psych); library(jsonlite)})

read <- function(path) read.csv(path, colClasses = "character", na.strings = character(0))
a <- read("data/extraction/extractors/pilot-team.csv")
b <- read("data/extraction/extractors/second-extractor.csv")
shared <- sort(intersect(a$case_id, b$case_id))
a <- a[match(shared, a$case_id), ]
b <- b[match(shared, b$case_id), ]

lists <- c("etiology", "bone_sites", "vertebral_levels", "other_extrahepatic_sites",
           "diagnostics", "liver_treatments", "bone_treatments", "systemic_treatments")
numbers <- list(age = NA, afp_ng_ml = NA, pub_year = NA,
                survival_months_after_bone_met = 0.1, survival_months_after_hcc_dx = 0.1)
fields <- c("source_title", "source_url", "doi", "pmid", "pub_year", "country", "age", "sex",
            "etiology", "cirrhosis", "afp_ng_ml", "bone_met_first_presentation", "bone_sites",
            "vertebral_levels", "other_extrahepatic_sites", "spinal_cord_compression",
            "pathological_fracture", "diagnostics", "liver_treatments", "bone_treatments",
            "systemic_treatments", "vital_status", "survival_months_after_bone_met",
            "survival_months_after_hcc_dx", "survival_time_origin")

category <- function(cells, field) {
  cells <- trimws(cells)
  sapply(cells, function(cell) {
    if (cell == "") return("<blank>")
    if (field %in% lists) {
      items <- trimws(strsplit(cell, ";", fixed = TRUE)[[1]])
      return(paste(sort(unique(items[items != ""])), collapse = ";"))
    }
    if (field %in% names(numbers)) {
      step <- numbers[[field]]
      value <- as.numeric(cell)
      return(format(if (is.na(step)) value else round(value / step), digits = 15))
    }
    cell
  }, USE.NAMES = FALSE)
}

out <- list()
for (field in fields) {
  x <- category(a[[field]], field)
  y <- category(b[[field]], field)
  levels <- sort(unique(c(x, y)))
  kappa <- if (length(levels) < 2) NA else
    cohen.kappa(cbind(factor(x, levels), factor(y, levels)))$kappa
  out[[field]] <- list(compared = length(x), agreed = sum(x == y), kappa = kappa)
}
cat(toJSON(list(cases = length(shared), fields = out), auto_unbox = TRUE, digits = NA,
           na = "null", pretty = TRUE), "\n")
