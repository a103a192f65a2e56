# Two commands for a newcomer: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# Debian packages: Chromium for the admin browser tests, HarfBuzz subsetting for fast WeasyPrint,
# poppler-utils (pdftoppm) to look at PDFs, DejaVu fonts (accents, umlauts, the euro sign) for them.
SYSTEM_PACKAGES := chromium libharfbuzz-subset0 poppler-utils fonts-dejavu-core

.PHONY: install run test lint system-deps demo-data

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing system packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "Missing system packages:$$missing (install them as root; the browser tests are skipped without Chromium)"; \
	fi

demo-data: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py create_demo
	$(BIN)/python manage.py reverb_demo
	$(BIN)/python manage.py shopify_demo
	$(BIN)/python manage.py woocommerce_demo
	$(BIN)/python manage.py vr_demo
	$(BIN)/python manage.py ebay_demo
	$(BIN)/python manage.py etsy_demo
	$(BIN)/python manage.py amazon_demo
	$(BIN)/python manage.py declare_schedules

# Procfile.dev = the Procfile's web, workers and beat plus a loopback sandbox of every marketplace for the demo.
run: demo-data
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start

test: install system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
