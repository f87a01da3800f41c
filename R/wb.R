## Within/between decomposition of covariates: wb(x, g) in an lmmfit formula.
## (Placeholder until the within/between issue lands: no formula has wb().)

## NULL when the formula has no wb() term; otherwise list(formula, data, info)
## with the wb() calls replaced by ordinary columns of the augmented data.
wb_expand <- function(formula, data, env) NULL

## newdata with the wb() columns a fitted model needs, from its training means.
wb_newdata <- function(object, newdata) newdata
