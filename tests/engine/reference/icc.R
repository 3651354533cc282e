# Reference values for alliance.relationship.icc, from R's psych::ICC.
# Run from this folder:  Rscript icc.R
# Writes icc_psych_results.csv (one row per dataset x form) and icc_alliance_pairs.csv (data).
suppressPackageStartupMessages(library(psych))

# Copy of shared/reference-data/icc (facts from Shrout & Fleiss 1979, Table 1).
sf <- read.csv("shrout_fleiss_1979_wide.csv")
if (!file.exists("icc_alliance_pairs.csv")) {
  # 40 sessions rated by a client (WAI-SR, 12-60) and a therapist (same scale), therapist lower.
  set.seed(20261126)
  true <- rnorm(40, 48, 6)
  pairs <- data.frame(target = 1:40,
                      client = round(pmin(60, true + rnorm(40, 2, 3))),
                      therapist = round(pmin(60, true + rnorm(40, -3, 4))))
  write.csv(pairs, "icc_alliance_pairs.csv", row.names = FALSE)
}
pairs <- read.csv("icc_alliance_pairs.csv")

one <- function(name, m) {
  r <- ICC(m, lmer = FALSE)$results
  data.frame(dataset = name, psych_name = as.character(r$type), icc = r$ICC, f = r$F,
             df1 = r$df1, df2 = r$df2, p = r$p,
             ci_low = r[["lower bound"]], ci_high = r[["upper bound"]])
}
out <- rbind(one("shrout_fleiss_1979", as.matrix(sf[, -1])),
             one("alliance_pairs", as.matrix(pairs[, c("client", "therapist")])))
write.csv(out, "icc_psych_results.csv", row.names = FALSE)
cat(sprintf("psych %s\n", packageVersion("psych")))
