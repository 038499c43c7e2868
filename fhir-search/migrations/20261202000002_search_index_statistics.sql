-- Which (type, parameter) pairs exist, for the planner.
--
-- Every index row names its resource type and parameter, and the two are far from independent
-- (`birthdate` rows are all Patient rows). Estimating `res_type = 'Patient' AND sp_name =
-- 'birthdate'` as the product of the two frequencies, the planner expected one Patient with a
-- birth date after 1940 on the tenfold Synthea set instead of 340, and began a name-and-birth-date
-- search from the dates: 5 ms instead of 0.05. A most-common-values list over the pair gives it
-- the real frequencies. A projection rebuild copies these with its tables (LIKE ... INCLUDING ALL).
CREATE STATISTICS hfj_spidx_string_kind (mcv) ON res_type, sp_name FROM hfj_spidx_string;
CREATE STATISTICS hfj_spidx_token_kind (mcv) ON res_type, sp_name FROM hfj_spidx_token;
CREATE STATISTICS hfj_spidx_date_kind (mcv) ON res_type, sp_name FROM hfj_spidx_date;
CREATE STATISTICS hfj_spidx_number_kind (mcv) ON res_type, sp_name FROM hfj_spidx_number;
CREATE STATISTICS hfj_spidx_quantity_kind (mcv) ON res_type, sp_name FROM hfj_spidx_quantity;
CREATE STATISTICS hfj_spidx_uri_kind (mcv) ON res_type, sp_name FROM hfj_spidx_uri;
CREATE STATISTICS hfj_spidx_coords_kind (mcv) ON res_type, sp_name FROM hfj_spidx_coords;
CREATE STATISTICS hfj_res_link_kind (mcv) ON src_type, sp_name FROM hfj_res_link;
