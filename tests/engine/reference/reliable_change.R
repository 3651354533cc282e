# Independent reference values for alliance.change (reliable change and clinical significance).
#
# Base R only: each formula is written out from the publications, not taken from a package
# (the R package clinicalsignificance is not installed here and CRAN is unreachable).
#
#   Jacobson NS, Truax P (1991). J Consult Clin Psychol 59(1):12-19.
#   Hsu LM (1995). J Consult Clin Psychol 63(1):141-144 (Gulliksen-Lord-Novick index).
#   Hageman WJJM, Arrindell WA (1999). Behav Res Ther 37(12):1169-1193.
#   Maassen GH (2004). J Int Neuropsychol Soc 10(6):888-893.
#
# Two data sets:
#   "sgdata"    BDI-II at baseline (bdi_s0) and session 12 (bdi_s12) of the suddengains example
#               data (reference-data/rom/sgdata_suddengains_wide.csv, MIT), complete pairs;
#               lower is better; reliability .931; SD and means from the sample; functional
#               norms M 7, SD 7 (illustrative, as in the clinicalsignificance vignettes).
#   "jt1991"    14 hand-made pairs on the scale of Jacobson & Truax's worked example (higher is
#               better; clinical M 40, SD 7.5; functional M 60, SD 7.5; reliability .80), chosen
#               to give every category.
#
# Run from the repository root:
#   Rscript tests/engine/reference/reliable_change.R [path/to/sgdata_suddengains_wide.csv]
# It writes reliable_change_rows.csv and reliable_change_params.csv next to this script.

args <- commandArgs(trailingOnly = TRUE)
data_path <- if (length(args) >= 1) args[1] else
  "/work/shared/reference-data/rom/sgdata_suddengains_wide.csv"
out_dir <- "tests/engine/reference"

z <- 1.96            # two-tailed .05 (JT 1991)
z_ha <- 1.65         # Hageman & Arrindell 1999

reference <- function(name, ids, pre, post, rxx, s_pre, m_clin, m_func, sd_func, better) {
  # better = +1 when higher is better, -1 when lower is better
  m_pre <- mean(pre); m_post <- mean(post); s_post <- sd(post); r12 <- cor(pre, post)
  s_clin <- s_pre

  # Jacobson & Truax (1991)
  se <- s_pre * sqrt(1 - rxx)
  s_diff <- sqrt(2 * se^2)
  rc_jt <- (post - pre) / s_diff
  cut_a <- m_clin + better * 2 * s_clin          # 2 SD beyond the clinical mean, towards health
  cut_b <- m_func - better * 2 * sd_func         # 2 functional SD short of the functional mean
  cut_c <- (s_clin * m_func + sd_func * m_clin) / (s_clin + sd_func)

  classify <- function(rc, crit, clinical_pre, functional_post) {
    improved <- better * rc > crit
    deteriorated <- better * rc < -crit
    ifelse(improved & clinical_pre & functional_post, "recovered",
           ifelse(improved, "improved", ifelse(deteriorated, "deteriorated", "unchanged")))
  }
  # clinical = at or beyond the cutoff on the clinical side
  clinical <- function(x, cut) if (better < 0) x >= cut else x <= cut
  clin_pre <- clinical(pre, cut_c)
  func_post <- !clinical(post, cut_c)
  cat_jt <- classify(rc_jt, z, clin_pre, func_post)

  # Maassen (2004): the pre and the post SD
  s_diff_m <- sqrt((s_pre^2 + s_post^2) * (1 - rxx))
  rc_m <- (post - pre) / s_diff_m
  cat_m <- classify(rc_m, z, clin_pre, func_post)

  # Gulliksen-Lord-Novick (Hsu 1995), around the clinical (pre-treatment) mean
  se_pred <- s_pre * sqrt(1 - rxx^2)
  rc_gln <- ((post - m_clin) - rxx * (pre - m_clin)) / se_pred
  # improvement: better * rc_gln > z, i.e. better * (post - pre) > thr_gln
  thr_gln <- z * se_pred + better * (1 - rxx) * (m_clin - pre)
  cat_gln <- classify(rc_gln, z, clin_pre, func_post)

  # Hageman & Arrindell (1999): sample means, post SD and pre-post correlation
  r_pre <- (s_pre^2 - se^2) / s_pre^2
  r_post <- (s_post^2 - se^2) / s_post^2
  r_dd <- (s_pre^2 * r_pre + s_post^2 * r_post - 2 * s_pre * s_post * r12) /
          (s_pre^2 + s_post^2 - 2 * s_pre * s_post * r12)
  rc_ha <- ((post - pre) * r_dd + (m_post - m_pre) * (1 - r_dd)) /
           (sqrt(r_dd) * sqrt(2 * se^2))
  r_clin <- (s_clin^2 - se^2) / s_clin^2
  r_func <- (sd_func^2 - se^2) / sd_func^2
  ts_clin <- s_clin * sqrt(r_clin)
  ts_func <- sd_func * sqrt(r_func)
  ha_a <- m_clin + better * 2 * ts_clin
  ha_b <- m_func - better * 2 * ts_func
  ha_c <- (ts_clin * m_func + ts_func * m_clin) / (ts_clin + ts_func)
  cs_indiv <- (m_post + (post - m_post) * r_post - ha_c) / (sqrt(r_post) * se)
  thr_ha <- (z_ha * sqrt(r_dd) * sqrt(2 * se^2) - better * (m_post - m_pre) * (1 - r_dd)) / r_dd
  cat_ha <- classify(rc_ha, z_ha, clinical(pre, ha_c), better * cs_indiv > z_ha)

  rows <- data.frame(
    dataset = name, id = ids, pre = pre, post = post,
    rc_jt = rc_jt, category_jt = cat_jt,
    rc_maassen = rc_m, category_maassen = cat_m,
    rc_gln = rc_gln, threshold_gln = thr_gln, category_gln = cat_gln,
    rc_ha = rc_ha, cs_indiv = cs_indiv, category_ha = cat_ha
  )
  params <- data.frame(
    dataset = name,
    name = c("direction", "reliability", "clinical_mean", "clinical_sd", "functional_mean",
             "functional_sd", "sd_pre", "mean_pre", "mean_post", "sd_post", "r_prepost", "se",
             "s_diff", "threshold_jt", "cutoff_a", "cutoff_b", "cutoff_c", "s_diff_maassen",
             "threshold_maassen", "se_prediction", "r_dd", "threshold_ha", "ha_cutoff_a",
             "ha_cutoff_b", "ha_cutoff_c"),
    value = c(better, rxx, m_clin, s_clin, m_func, sd_func, s_pre, m_pre, m_post, s_post, r12,
              se, s_diff, z * s_diff, cut_a, cut_b, cut_c, s_diff_m, z * s_diff_m, se_pred,
              r_dd, thr_ha, ha_a, ha_b, ha_c)
  )
  list(rows = rows, params = params)
}

d <- read.csv(data_path)
d <- d[!is.na(d$bdi_s0) & !is.na(d$bdi_s12), c("id", "bdi_s0", "bdi_s12")]
sg <- reference("sgdata", d$id, d$bdi_s0, d$bdi_s12, rxx = 0.931, s_pre = sd(d$bdi_s0),
                m_clin = mean(d$bdi_s0), m_func = 7, sd_func = 7, better = -1)

jt_pre  <- c(40, 40, 50, 35, 45, 30, 55, 38, 42, 47, 33, 52, 44, 36)
jt_post <- c(55, 45, 40, 60, 52, 42, 58, 50, 31, 62, 37, 70, 60, 44)
jt <- reference("jt1991", seq_along(jt_pre), jt_pre, jt_post, rxx = 0.80, s_pre = 7.5,
                m_clin = 40, m_func = 60, sd_func = 7.5, better = 1)

rows <- rbind(sg$rows, jt$rows)
params <- rbind(sg$params, jt$params)
write.csv(rows, file.path(out_dir, "reliable_change_rows.csv"), row.names = FALSE)
params$value <- sprintf("%.15g", params$value)
write.csv(params, file.path(out_dir, "reliable_change_params.csv"), row.names = FALSE)
print(params, digits = 15)
print(table(rows$dataset, rows$category_jt))
print(table(rows$dataset, rows$category_ha))
