# Reference values for alliance.relationship.fit_l2_logistic (penalty 0) and auc, from R.
# Run from this folder:  Rscript dropout_glm.R
# dropout_features.csv (made here once, seeded) holds early features and a dropout label.
if (!file.exists("dropout_features.csv")) {
  set.seed(7)
  n <- 300
  d <- data.frame(
    early_alliance = pmin(1, pmax(0, rnorm(n, 0.72, 0.14))),
    missed_share = rbinom(n, 3, 0.1) / 3,
    early_improvement = round(rnorm(n, 2, 3)),
    intake = round(pmin(27, pmax(5, rnorm(n, 15, 5))))
  )
  d$early_alliance_min <- pmax(0, d$early_alliance - abs(rnorm(n, 0.05, 0.04)))
  eta <- -1.2 - 3 * (d$early_alliance - 0.72) + 2 * d$missed_share - 0.15 * d$early_improvement
  d$dropped_out <- rbinom(n, 1, plogis(eta))
  d <- round(d, 4)
  write.csv(d, "dropout_features.csv", row.names = FALSE)
}
d <- read.csv("dropout_features.csv")
m <- glm(dropped_out ~ early_alliance + early_alliance_min + missed_share + early_improvement +
           intake, family = binomial, data = d)
p <- fitted(m)
# AUC as the Mann-Whitney statistic (wilcox.test's W / (n1 n0))
w <- wilcox.test(p[d$dropped_out == 1], p[d$dropped_out == 0], exact = FALSE)$statistic
auc <- unname(w) / (sum(d$dropped_out == 1) * sum(d$dropped_out == 0))
out <- data.frame(term = c(names(coef(m)), "logLik", "auc"),
                  value = c(unname(coef(m)), as.numeric(logLik(m)), auc))
write.csv(out, "dropout_glm_results.csv", row.names = FALSE)
print(out, digits = 12)
