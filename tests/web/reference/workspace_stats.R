# Expected values for src/alliance_web/workspace/stats.py (tests/web/test_workspace_stats.py).
# Run: Rscript tests/web/reference/workspace_stats.R   (needs metafor)
# Writes workspace_stats_wilson.csv and workspace_stats_smcr.csv next to this script.
suppressPackageStartupMessages(library(metafor))
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))

# Wilson score interval = prop.test without continuity correction.
cases <- data.frame(k = c(0, 1, 5, 15, 23, 81, 29, 40, 12), n = c(20, 29, 25, 148, 60, 263, 29, 40, 37))
w <- t(mapply(function(k, n) prop.test(k, n, correct = FALSE)$conf.int, cases$k, cases$n))
cases$low <- w[, 1]
cases$high <- w[, 2]
write.csv(cases, file.path(here, "workspace_stats_wilson.csv"), row.names = FALSE)

# Standardised mean change, raw-score standardisation (Becker 1988), from raw pre/post data.
groups <- list(
  phq9_a = list(pre = c(18, 15, 20, 12, 17, 22, 14, 16), post = c(9, 11, 14, 6, 12, 15, 5, 10)),
  phq9_b = list(pre = c(11, 13, 19, 24, 10), post = c(12, 8, 17, 20, 13)),
  gad7 = list(pre = c(14, 12, 17, 9, 15, 11, 16, 13, 18, 10, 12, 14),
              post = c(8, 10, 9, 7, 6, 11, 12, 5, 9, 8, 10, 7)),
  who5 = list(pre = c(8, 6, 10, 12, 5, 9), post = c(14, 10, 12, 18, 9, 11))  # higher is better
)
rows <- lapply(names(groups), function(g) {
  pre <- groups[[g]]$pre; post <- groups[[g]]$post
  better_up <- g == "who5"
  m1 <- if (better_up) mean(post) else mean(pre)
  m2 <- if (better_up) mean(pre) else mean(post)
  es <- escalc(measure = "SMCR", m1i = m1, m2i = m2, sd1i = sd(pre), ni = length(pre), ri = cor(pre, post))
  ci <- summary(es)
  data.frame(group = g, pre = paste(pre, collapse = " "), post = paste(post, collapse = " "),
             direction = if (better_up) "higher_is_better" else "higher_is_worse",
             d = es$yi, v = es$vi, low = ci$ci.lb, high = ci$ci.ub, r = cor(pre, post))
})
write.csv(do.call(rbind, rows), file.path(here, "workspace_stats_smcr.csv"), row.names = FALSE)
