# Reference values for alliance.mixed (fit_lmm) and alliance.recovery (loglinear_intake),
# produced by lme4. Run from the repository root:
#
#     Rscript tests/engine/reference/lmm_reference.R
#
# It (re)writes the data sets it generates into tests/engine/reference/lmm_data/ and the fitted
# values into tests/engine/reference/lmm_reference.json. Tests read both and need no R.
#
# Data sets
#   sleepstudy            lme4's example data (Belenky et al. 2003), Reaction ~ Days + (Days | Subject)
#   etr_balanced          simulated PHQ-9-like courses, 150 clients x sessions 1..8 (seeded here)
#   etr_unbalanced        250 clients, 2..16 sessions, 15% of sessions missed (seeded here)
#   suddengains           the suddengains R package's sgdata (BDI-II, 43 clients, with gaps),
#                         reshaped long: session = s + 1, so the baseline s0 is session 1
#   statsmodels_lmeNN     statsmodels' lme4-checked test data (BSD-3-Clause), copied unchanged
# The ETR data sets are fitted with the issue-3 model on sessions >= 2, intake = session-1 score:
#   lmer(score ~ log(session) * intake + (1 + log(session) | client), REML = TRUE)
# Each model is fitted by REML and by ML, twice: with lmer's default control ("default"), and
# with BOBYQA run to a much tighter tolerance ("tight"), which shows how precisely the
# optimum itself is known.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

# With arguments (`--out=FILE name ...`, used by the live test in test_mixed.py) it fits only
# the named, already written data sets and writes the values to FILE instead.
args <- commandArgs(trailingOnly = TRUE)
out_arg <- grep("^--out=", args, value = TRUE)
only <- setdiff(args, out_arg)
if (!length(only)) only <- NULL
here <- "tests/engine/reference"
data_dir <- file.path(here, "lmm_data")
out_file <- if (length(out_arg)) sub("^--out=", "", out_arg[1]) else file.path(here, "lmm_reference.json")

# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------
write_data <- function(frame, name) {
  write.csv(frame, file.path(data_dir, paste0(name, ".csv")), row.names = FALSE)
}

if (is.null(only)) {
  write_data(lme4::sleepstudy, "sleepstudy")

  simulate_etr <- function(n_clients, sessions, miss, seed) {
    set.seed(seed)
    rows <- list()
    for (i in seq_len(n_clients)) {
      s_max <- if (length(sessions) == 1) sessions else sample(sessions, 1)
      s <- seq_len(s_max)
      keep <- c(TRUE, runif(s_max - 1) > miss)
      intake_true <- rnorm(1, 16, 4.5)
      u0 <- rnorm(1, 0, 2.5)
      u1 <- rnorm(1, 0, 1.5)
      slope <- -3.5 - 0.15 * (intake_true - 16) + u1
      mu <- intake_true + u0 * (s > 1) + slope * log(s)
      score <- round(pmin(27, pmax(0, mu + rnorm(s_max, 0, 2.2))))
      rows[[i]] <- data.frame(client = sprintf("c%03d", i), session = s[keep],
                              score = score[keep])
    }
    do.call(rbind, rows)
  }
  write_data(simulate_etr(150, 8, 0, 20240301), "etr_balanced")
  write_data(simulate_etr(250, 2:16, 0.15, 20240302), "etr_unbalanced")

  # The wide original lives in the shared reference data; the long copy is committed, so the
  # script keeps it when the original is not at hand.
  wide_file <- "/work/shared/reference-data/rom/sgdata_suddengains_wide.csv"
  if (file.exists(wide_file)) {
    wide <- read.csv(wide_file)
    long <- do.call(rbind, lapply(0:12, function(s) {
      data.frame(client = wide$id, session = s + 1, score = wide[[paste0("bdi_s", s)]])
    }))
    long <- long[!is.na(long$score), ]
    long <- long[order(long$client, long$session), ]
    write_data(long, "suddengains")
  }
}

# ------------------------------------------------------------------------------------------
# Fits
# ------------------------------------------------------------------------------------------
controls <- list(
  default = lmerControl(),
  tight = lmerControl(optimizer = "bobyqa",
                      optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5))
)

etr_frame <- function(d) {
  intake <- d[d$session == 1, c("client", "score")]
  names(intake)[2] <- "intake"
  d <- merge(d[d$session >= 2, ], intake, by = "client")
  d[order(d$client, d$session), ]
}

# Expected score and predictive distribution of a new client's score (ETR models only):
# mean x'b, variance x' vcov(b) x + z' Sigma_u z + sigma^2, percentiles by qnorm.
etr_predictions <- function(m) {
  grid <- expand.grid(session = c(1, 2, 4, 8, 12, 20), intake = c(5, 12, 16, 24))
  X <- cbind(1, log(grid$session), grid$intake, log(grid$session) * grid$intake)
  Z <- X[, 1:2]
  V <- as.matrix(vcov(m))
  D <- as.matrix(VarCorr(m)[[1]])
  mean <- as.vector(X %*% fixef(m))
  var <- rowSums((X %*% V) * X) + rowSums((Z %*% D) * Z) + sigma(m)^2
  data.frame(session = grid$session, intake = grid$intake, expected = mean, sd = sqrt(var),
             p10 = mean + qnorm(0.10) * sqrt(var), p90 = mean + qnorm(0.90) * sqrt(var))
}

describe <- function(m, dataset, formula, control, etr = FALSE) {
  vc <- VarCorr(m)[[1]]
  re_cov <- unname(as.matrix(vc))
  fe <- fixef(m)
  list(
    dataset = dataset,
    formula = formula,
    reml = isREML(m),
    control = control,
    fixef = as.list(fe),
    se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))),
    random_names = colnames(vc),
    re_cov = re_cov,
    residual_var = sigma(m)^2,
    theta = unname(getME(m, "theta")),
    criterion = if (isREML(m)) REMLcrit(m) else deviance(m),
    loglik = as.numeric(logLik(m)),
    n_obs = nobs(m),
    n_groups = unname(ngrps(m)),
    singular = isSingular(m),
    ranef_head = unname(as.matrix(ranef(m)[[1]][1:3, , drop = FALSE])),
    predictions = if (etr) etr_predictions(m) else NULL
  )
}

specs <- list(
  list(name = "sleepstudy", file = "sleepstudy",
       formula = "Reaction ~ Days + (Days | Subject)", etr = FALSE),
  list(name = "etr_balanced", file = "etr_balanced",
       formula = "score ~ log(session) * intake + (1 + log(session) | client)", etr = TRUE),
  list(name = "etr_unbalanced", file = "etr_unbalanced",
       formula = "score ~ log(session) * intake + (1 + log(session) | client)", etr = TRUE),
  list(name = "suddengains", file = "suddengains",
       formula = "score ~ log(session) * intake + (1 + log(session) | client)", etr = TRUE)
)
for (f in sort(list.files(data_dir, pattern = "^statsmodels_lme[0-9]+\\.csv$"))) {
  d <- read.csv(file.path(data_dir, f), nrows = 1)
  fe <- grep("^exog_fe", names(d), value = TRUE)
  re <- grep("^exog_re", names(d), value = TRUE)
  specs[[length(specs) + 1]] <- list(
    name = sub("\\.csv$", "", f), file = sub("\\.csv$", "", f),
    formula = sprintf("endog ~ 0 + %s + (0 + %s | groups)",
                      paste(fe, collapse = " + "), paste(re, collapse = " + ")),
    etr = FALSE)
}

fits <- list()
for (spec in specs) {
  if (!is.null(only) && !(spec$name %in% only)) next
  d <- read.csv(file.path(data_dir, paste0(spec$file, ".csv")))
  if (spec$etr) d <- etr_frame(d)
  for (reml in c(TRUE, FALSE)) {
    for (control in names(controls)) {
      m <- suppressMessages(lmer(as.formula(spec$formula), data = d, REML = reml,
                                 control = controls[[control]]))
      fits[[length(fits) + 1]] <- describe(m, spec$name, spec$formula, control, spec$etr)
    }
  }
}

out <- list(
  generated_by = "tests/engine/reference/lmm_reference.R",
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  fits = fits
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_file)
