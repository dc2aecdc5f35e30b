#!/usr/bin/env bash
# Writes small seed inputs for each target into corpus/<target>/ (kept out of git).
set -euo pipefail
cd "$(dirname "$0")"
seed() { mkdir -p "corpus/$1"; printf '%s' "$3" > "corpus/$1/$2"; }
# docs/protocol.md §3 vectors V3 (valid at 1700000000) and V4 (float expiry, extra claim).
seed token v3 'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMH0.MZSBbaslZqmBM6DwdvLfU_lMAEuXYRBRoZaw5F72kUI'
seed token v4 'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkb21haW4iOiJleGFtcGxlLmZ5cmUuY28iLCJ1c2VyX2lkIjoic3lzdGVtIiwiZGlzcGxheV9uYW1lIjoic3lzdGVtIiwiZXhwaXJlcyI6MTcwMDA4NjQwMC4xMjMsImlhdCI6MTcwMDAwMDAwMH0.MhlQd9DC4RDFBMsqXOtAM-rESVeH-0-ZRcOi1h82rc4'
seed tolerant_profile full '{"id":"u1","display_name":"Ada","name":{"formatted":"Ada L","first":"Ada"},"email":"a@example.com","image_url":"https://cdn.example/a.png","tags":["staff","t_2"],"autofollow_conversations":"false","email_notifications":{"comments":"often","likes":"never"},"websites":["https://a.example"],"display_rules":{"bio":true,"name":"false"},"moderator":"true","bio":"","shoe_size":44}'
seed tolerant_profile min '{"id":"u1","display_name":"A"}'
seed retry_after secs '120'
seed retry_after date 'Wed, 21 Oct 2015 07:28:00 GMT'
seed retry_after rfc850 'Wednesday, 21-Oct-15 07:28:00 GMT'
seed pull_query simple 'id=u1'
seed pull_query encoded 'a=1&id=user-42.x_y&b=%41%2B+&c'
seed pull_query path 'u1'
