# Time lme4 on the loglinear_intake model, for bench/bench_fit.py.
#
#     Rscript bench/bench_fit_lme4.R COURSE.csv OUT.json
#
# COURSE.csv is long course data (client, session, score; session 1 = intake). Timed separately:
# loading the file (data.table::fread), deriving the intake and the rows from session 2 on, and
# lmer() alone. Writes the timings and the estimates to OUT.json.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
  library(data.table)
})

args <- commandArgs(trailingOnly = TRUE)
elapsed <- function() proc.time()[["elapsed"]]

t0 <- elapsed()
d <- fread(args[1], data.table = FALSE)
t1 <- elapsed()
intake <- d[d$session == 1, c("client", "score")]
names(intake)[2] <- "intake"
d <- merge(d[d$session >= 2, ], intake, by = "client")
t2 <- elapsed()
m <- lmer(score ~ log(session) * intake + (1 + log(session) | client), data = d, REML = TRUE)
t3 <- elapsed()

out <- list(
  load_s = t1 - t0,
  prepare_s = t2 - t1,
  fit_s = t3 - t2,
  fixef = as.list(fixef(m)),
  re_cov = unname(as.matrix(VarCorr(m)[[1]])),
  residual_var = sigma(m)^2,
  criterion = REMLcrit(m),
  n_obs = nobs(m),
  n_groups = unname(ngrps(m)),
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4"))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[2])
