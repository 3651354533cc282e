# Reference values for alliance.relationship.alliance_outcome_effects, from lme4.
# Run from this folder:  Rscript within_between.R
# The data (within_between_data.csv) are made here once (seeded) and then kept; R does the
# lagging, person-mean centring and detrending itself, independently of the Python code.
suppressPackageStartupMessages(library(lme4))

if (!file.exists("within_between_data.csv")) {
  set.seed(4)
  n <- 60; S <- 10
  d <- expand.grid(session = 1:S, client = 1:n)[, c("client", "session")]
  trait <- rnorm(n, 45, 5)
  d$alliance <- round(trait[d$client] + 1.2 * log(d$session) + rnorm(nrow(d), 0, 2.5), 1)
  ui <- rnorm(n, 0, 3)
  d$outcome <- NA
  for (i in 1:n) {
    rows <- which(d$client == i)
    y <- 16 + ui[i]
    for (k in seq_along(rows)) {
      r <- rows[k]
      d$outcome[r] <- round(y, 1)
      dev <- d$alliance[r] - trait[i]
      y <- 16 + ui[i] - 0.4 * d$session[r] - 0.3 * dev - 0.08 * (trait[i] - 45) + rnorm(1, 0, 2)
    }
  }
  d$alliance[sample(nrow(d), 25)] <- NA   # some sessions without an alliance rating
  d <- d[-sample(nrow(d), 30), ]          # and some missed sessions
  write.csv(d, "within_between_data.csv", row.names = FALSE, na = "")
}
d <- read.csv("within_between_data.csv")

prep <- function(d, detrend) {
  d <- d[order(d$client, d$session), ]
  d <- d[!is.na(d$outcome), ]
  d$next_outcome <- ave(d$outcome, d$client, FUN = function(v) c(v[-1], NA))
  d <- d[!is.na(d$alliance) & !is.na(d$next_outcome), ]
  d$alliance_between <- ave(d$alliance, d$client)
  d$outcome_within <- d$outcome - ave(d$outcome, d$client)
  d$alliance_within <- d$alliance - d$alliance_between
  if (detrend) {
    for (i in unique(d$client)) {
      r <- d$client == i
      if (sum(r) >= 3) {
        d$alliance_within[r] <- residuals(lm(d$alliance[r] ~ d$session[r]))
      }
    }
  }
  d
}

out <- list()
for (detrend in c(TRUE, FALSE)) for (adjust in c(TRUE, FALSE)) {
  p <- prep(d, detrend)
  f <- if (adjust) next_outcome ~ alliance_within + alliance_between + session + outcome_within + (1 | client)
       else next_outcome ~ alliance_within + alliance_between + session + (1 | client)
  m <- lmer(f, data = p, REML = TRUE)
  vc <- as.data.frame(VarCorr(m))
  key <- sprintf("detrend=%s,adjust=%s", detrend, adjust)
  out[[key]] <- list(
    fixed = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    intercept_var = vc$vcov[1], residual_var = sigma(m)^2,
    reml_criterion = unname(REMLcrit(m)), n_obs = nobs(m), n_clients = ngrps(m)[["client"]])
}
json <- function(x) {
  if (is.list(x)) {
    inner <- paste(sprintf('"%s": %s', names(x), sapply(x, json)), collapse = ", ")
    return(paste0("{", inner, "}"))
  }
  formatC(x, digits = 15, format = "g")
}
writeLines(json(out), "within_between_lme4.json")
cat(sprintf("lme4 %s\n", packageVersion("lme4")))
