"""Deterministic generator of corpusmill's sample crawl dump.

``python sample_data/generate.py`` rewrites, byte for byte, the files stored next to
this script; ``--out DIR`` writes them elsewhere and ``--seed N`` draws another corpus.
``--page-weight web`` dresses every HTML page of the WARC files in the markup of a real
site (inline CSS and scripts, JSON-LD, SVG icons, a mega-menu, layout div soup, ads,
related cards, comments, a consent dialog, a fat footer, trackers) around the same
``<article>``: the median page grows from 18 KB to 95 KB and its main text falls from
about two thirds to about a seventh of the HTML. The WET, JSONL and labels files, and
the default ("lean") output, do not change.
Only the standard library and ``zstandard`` are used. Every word of text comes from the
word lists, templates and small per-language grammars in this module, and every random
choice derives from ``random.Random(seed).random()``, the one stream Python promises to
keep stable across versions.

Output files
------------
crawl-0000N.warc.gz (N = 0, 1, 2)
    WARC/1.0 with one gzip member per record (mtime 0, level 9, no file name), laid out
    as Common Crawl does: a ``warcinfo`` record, then a ``request`` and a ``response``
    record (``application/http; msgtype=response``) per page. Block and payload digests
    are ``sha1:`` + base32 of the SHA-1.
wet-00000.warc.wet.gz
    WET-style: a ``warcinfo`` record, then one ``conversion`` record (``text/plain``) per
    page whose block is the page's visible text, boilerplate lines included.
dump-00000.jsonl.zst
    A single zstd frame (level 19, content size written) of JSON lines with the keys
    ``id``, ``url``, ``text``, ``meta`` (``lang``, ``source``); ``text`` is clean main text.
labels.json
    Ground truth, pretty-printed with sorted keys::

        {"seed": int,
         "files": {file name: {"format": ..., "documents": int}},
         "counts": {"kind": {kind: int}, "lang": {lang: int}},
         "documents": {url: {"file", "format", "kind", "lang", "duplicate_of",
                             "edit_rate", "charset", "content_type"}}}

    There is one document per WARC ``response`` record, WET ``conversion`` record and
    JSONL line, keyed by URL; URLs are unique across all files.

Label fields
------------
format
    ``warc``, ``wet`` or ``jsonl``.
kind
    ``article`` (prose pages, including the XHTML, ``text/xml``, header-less and non-UTF-8
    ones), ``nav`` (menus and link lists), ``spam`` (keyword stuffing), ``repeated`` (one
    line many times), ``short`` (a sentence or two), ``exact_dup`` and ``near_dup``
    (copies of the article at ``duplicate_of``), ``binary`` (PNG, JPEG, PDF),
    ``redirect`` (301 with an empty body) and ``not_found`` (404 page).
lang
    ISO 639-1 code of the text (en, de, fr, es, ru, zh), null when there is no text.
duplicate_of, edit_rate
    For duplicates the original's URL and ``edits / units of the original main text``
    (0.0 for exact duplicates); null otherwise. Units are whitespace-separated words, or
    non-space characters for zh. A near duplicate substitutes, deletes or inserts single
    words (single Han characters for zh) inside paragraphs, 1-10 % of all units. The main
    text is the article's title, byline and body blocks: the JSONL ``text``, the text of
    the ``<article>`` element in WARC pages, and a contiguous run of lines in WET blocks.
charset
    Encoding of the payload bytes (``utf-8``, ``windows-1251`` or ``iso-8859-1``), null
    for binary and empty payloads.
content_type
    The HTTP ``Content-Type`` header as sent, null when the response has none and for
    WET and JSONL records.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import datetime
import functools
import hashlib
import html
import json
import logging
import random
import re
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import zstandard

DEFAULT_SEED = 20240317
GZIP_LEVEL = 9
ZSTD_LEVEL = 19
WARC_FILE_COUNT = 3
ZIPF_SCALE = 1 << 20
LANGS = ("en", "de", "fr", "es", "ru", "zh")
TOPICS = ("gardening", "astronomy", "cooking", "local_history", "software", "travel", "finance", "health")

FILE_PLAN = {
    "warc": {"article": 230, "nav": 12, "spam": 10, "repeated": 8, "short": 10, "exact_dup": 8,
             "near_dup": 14, "binary": 4, "redirect": 2, "not_found": 2},
    "wet": {"article": 36, "nav": 4, "spam": 4, "repeated": 3, "short": 4, "exact_dup": 4, "near_dup": 5},
    "jsonl": {"article": 62, "nav": 4, "spam": 6, "repeated": 4, "short": 6, "exact_dup": 6, "near_dup": 12},
}
WET_FILE = "wet-00000.warc.wet.gz"
JSONL_FILE = "dump-00000.jsonl.zst"
LABELS_FILE = "labels.json"

LOG = logging.getLogger("corpusmill.sample_data")


class Rng:
    """Seeded random source; every draw goes through random(), whose sequence Python keeps stable."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed).random

    def random(self) -> float:
        """Return a float in [0, 1)."""
        return self._random()

    def below(self, n: int) -> int:
        """Return an int in [0, n)."""
        return int(self._random() * n)

    def between(self, low: int, high: int) -> int:
        """Return an int in [low, high]."""
        return low + self.below(high - low + 1)

    def chance(self, p: float) -> bool:
        """Return True with probability p."""
        return self._random() < p

    def choice(self, seq):
        """Return a uniformly chosen element."""
        return seq[self.below(len(seq))]

    def shuffled(self, seq) -> list:
        """Return a Fisher-Yates shuffled copy."""
        items = list(seq)
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items

    def jittered(self, seq, window: int) -> list:
        """Return a copy where each item moves only a few places, keeping the overall rank order."""
        items = list(seq)
        for i in range(len(items) - 1):
            j = min(len(items) - 1, i + self.below(window))
            items[i], items[j] = items[j], items[i]
        return items

    def sample(self, seq, k: int) -> list:
        """Return k distinct elements in random order."""
        return self.shuffled(seq)[:k]

    def bits(self, n: int) -> int:
        """Return an n-bit random integer built from 32-bit slices."""
        value = 0
        for _ in range(0, n, 32):
            value = (value << 32) | int(self._random() * 4294967296)
        return value & ((1 << n) - 1)

    def child(self) -> Rng:
        """Return an independent generator seeded from this one, so parts stay stable when others change."""
        return Rng(self.bits(64))

    def uuid(self) -> str:
        """Return a random version-4 UUID string."""
        return str(uuid.UUID(int=self.bits(128), version=4))


class Pool:
    """Zipf-weighted sampler: the item at rank r is drawn with weight proportional to 1 / (r + offset)."""

    def __init__(self, items, offset: int = 1) -> None:
        self.items = list(items)
        self.cum = []
        total = 0
        for rank in range(len(self.items)):
            total += ZIPF_SCALE // (rank + offset)
            self.cum.append(total)
        self.total = total

    def draw(self, rng: Rng):
        """Draw one item."""
        return self.items[bisect.bisect_right(self.cum, rng.below(self.total))]


class Weighted:
    """Sampler over (item, integer weight) pairs."""

    def __init__(self, pairs) -> None:
        self.items = [item for item, _ in pairs]
        self.cum = []
        total = 0
        for _, weight in pairs:
            total += weight
            self.cum.append(total)
        self.total = total

    def draw(self, rng: Rng):
        """Draw one item."""
        return self.items[bisect.bisect_right(self.cum, rng.below(self.total))]


# --------------------------------------------------------------------------- lexicon

@dataclass(frozen=True)
class Noun:
    """A noun with grammatical gender (m/f/n or ''), mass-noun and animacy flags."""

    word: str
    gender: str = ""
    mass: bool = False
    animate: bool = False


def parse_nouns(spec: str) -> list[Noun]:
    """Parse 'word/g' tokens: g is m, f or n, a trailing 'a' marks animate, '!' a mass noun, '_' a space."""
    nouns = []
    for token in spec.split():
        mass = token.endswith("!")
        word, _, tags = token.rstrip("!").partition("/")
        nouns.append(Noun(word.replace("_", " "), tags[:1], mass, tags[1:2] == "a"))
    return nouns


def split_words(spec: str) -> list[str]:
    """Split a space-separated word list; '_' stands for a space inside an entry."""
    return [word.replace("_", " ") for word in spec.split()]


LEXICON = {
    "en": {
        "nouns": "system method question problem idea result process detail change plan choice habit season "
                 "community project approach example pattern record summary tradition resource goal risk "
                 "benefit challenge mistake lesson decade morning evening winter summer schedule tool step "
                 "review report decision quality surface layer balance routine measurement factor neighbor",
        "topics": {
            "gardening": "soil! seedling compost! tomato hedge greenhouse mulch! orchard root fertilizer trellis "
                         "harvest perennial shrub seed blossom",
            "astronomy": "telescope galaxy orbit comet nebula eclipse planet observatory meteor constellation "
                         "asteroid lens horizon satellite spectrum star",
            "cooking": "recipe oven dough sauce spice skillet broth onion flour! garlic! dessert marinade kitchen "
                       "butter! pastry lentil",
            "local_history": "archive parish mill charter monument harbor railway census chapel guild bridge "
                             "mayor settlement manuscript tavern museum",
            "software": "compiler function database server module variable interface library repository bug "
                        "query thread cache parser deployment framework",
            "travel": "itinerary passport hostel ferry luggage! village coastline ticket guidebook station trail "
                      "visa suitcase border airport market",
            "finance": "budget mortgage dividend portfolio loan invoice pension inflation! savings! tax stock "
                       "bond account expense fee currency",
            "health": "vitamin muscle sleep! diet clinic symptom vaccine exercise stress! nurse heart posture "
                      "hydration! therapy allergy protein!",
        },
        "adjectives": "careful simple complex new old local modern traditional small large quiet bright dark "
                      "heavy light quick slow practical useful rare common fresh dry warm cold steady reliable "
                      "cheap expensive early late hidden obvious narrow broad gentle strong weak rich clean "
                      "surprising detailed seasonal efficient familiar ancient important",
        "verbs": "improve need describe use change support explain protect require show reduce increase build "
                 "choose compare prepare measure test record follow replace combine create find keep check "
                 "share study track store shape balance repair adjust organize review observe collect affect "
                 "reveal simplify limit extend handle produce",
        "adverbs": "often rarely usually quickly slowly carefully quietly always sometimes clearly gradually "
                   "easily frequently still already certainly probably mostly barely openly",
        "intensifiers": "very rather fairly remarkably slightly surprisingly",
        "openers": "However|In practice|Meanwhile|For example|In many cases|At first|Later|Surprisingly|"
                   "Of course|As a rule|In the end|Fortunately|On the other hand|Today|Last year|"
                   "In most towns|By contrast|Even so|In short|Sometimes",
        "conj_after": "because|although|while|when|since|if|unless|after|before|whereas",
        "conj_before": "Although|While|When|Since|If|Unless|After|Before|Once",
        "coord": "and|but|so|yet",
        "preps": "in|with|for|without|near|after|before|during|under|across|around|through|behind|beyond|"
                 "despite|along",
        "names": "Anna Whitaker|James Holloway|Laura Pryce|Daniel Marsh|Grace Ellison|Peter Fenwick|"
                 "Helen Doyle|Mark Carver|Ruth Baxter|Owen Colby|Clara Hartley|Simon Morrow",
        "units": "km kg hours meters liters minutes days",
    },
    "de": {
        "nouns": "Methode/f Frage/f Problem/n Idee/f Ergebnis/n Prozess/m Plan/m Wahl/f Gewohnheit/f "
                 "Jahreszeit/f Gemeinde/f Projekt/n Ansatz/m Beispiel/n Muster/n Bericht/m Tradition/f "
                 "Ressource/f Ziel/n Risiko/n Vorteil/m Fehler/m Lektion/f Jahrzehnt/n Morgen/m Abend/m "
                 "Winter/m Sommer/m Zeitplan/m Werkzeug/n Schritt/m Entscheidung/f Qualität/f Oberfläche/f "
                 "Schicht/f Gleichgewicht/n Alltag/m Messung/f Faktor/m System/n Wandel/m Verein/m",
        "topics": {
            "gardening": "Boden/m Setzling/m Kompost/m! Tomate/f Hecke/f Gewächshaus/n Mulch/m! Obstgarten/m "
                         "Wurzel/f Dünger/m Rankgitter/n Ernte/f Staude/f Strauch/m Samen/m Blüte/f",
            "astronomy": "Teleskop/n Galaxie/f Umlaufbahn/f Nebel/m Finsternis/f Sternwarte/f Meteor/m "
                         "Sternbild/n Linse/f Horizont/m Spektrum/n Stern/m Mond/m Himmel/m Krater/m Polarlicht/n",
            "cooking": "Rezept/n Ofen/m Teig/m Soße/f Gewürz/n Pfanne/f Brühe/f Zwiebel/f Mehl/n! Knoblauch/m! "
                       "Nachtisch/m Marinade/f Küche/f Butter/f! Gebäck/n Eintopf/m",
            "local_history": "Archiv/n Kirchspiel/n Mühle/f Urkunde/f Denkmal/n Hafen/m Eisenbahn/f "
                             "Volkszählung/f Kapelle/f Zunft/f Brücke/f Bürgermeister/ma Siedlung/f Handschrift/f "
                             "Gasthaus/n Museum/n",
            "software": "Compiler/m Funktion/f Datenbank/f Server/m Modul/n Variable/f Schnittstelle/f "
                        "Bibliothek/f Repository/n Fehlerbericht/m Abfrage/f Thread/m Zwischenspeicher/m "
                        "Parser/m Deployment/n Framework/n",
            "travel": "Reiseplan/m Reisepass/m Herberge/f Fähre/f Gepäck/n! Dorf/n Küste/f Fahrkarte/f "
                      "Reiseführer/m Bahnhof/m Wanderweg/m Visum/n Koffer/m Grenze/f Flughafen/m Markt/m",
            "finance": "Haushalt/m Hypothek/f Dividende/f Portfolio/n Kredit/m Rechnung/f Rente/f Inflation/f! "
                       "Ersparnis/f Steuer/f Aktie/f Anleihe/f Konto/n Ausgabe/f Gebühr/f Währung/f",
            "health": "Vitamin/n Muskel/m Schlaf/m! Ernährung/f! Klinik/f Symptom/n Impfstoff/m Training/n "
                      "Stress/m! Pflegekraft/fa Kreislauf/m Körperhaltung/f Flüssigkeit/f Therapie/f Allergie/f "
                      "Blutdruck/m",
        },
        "adjectives": "sorgfältig einfach komplex neu alt lokal modern traditionell klein groß ruhig hell "
                      "schwer leicht schnell langsam praktisch nützlich selten frisch trocken warm kalt stetig "
                      "zuverlässig günstig früh spät verborgen deutlich schmal breit sanft stark schwach reich "
                      "sauber überraschend genau saisonal effizient vertraut wichtig jung still klar",
        "verbs": "verbessert braucht beschreibt nutzt verändert unterstützt erklärt schützt erfordert zeigt "
                 "reduziert erhöht baut wählt vergleicht misst testet dokumentiert ersetzt kombiniert schafft "
                 "findet behält prüft teilt untersucht verfolgt speichert formt repariert organisiert "
                 "beobachtet sammelt beeinflusst enthüllt vereinfacht begrenzt erweitert liefert bewertet "
                 "plant pflegt erreicht",
        "adverbs": "oft selten meistens schnell langsam sorgfältig ruhig immer manchmal deutlich allmählich "
                   "leicht häufig noch bereits sicher wahrscheinlich kaum offen gern",
        "intensifiers": "sehr recht ziemlich erstaunlich überaus kaum",
        "openers": "Heute|Oft|Meistens|Inzwischen|Zudem|Trotzdem|Anfangs|Später|Natürlich|Tatsächlich|"
                   "Glücklicherweise|Im Winter|Am Ende|Im Alltag|Vor allem|Seit Jahren|Jedes Jahr|"
                   "Erstaunlicherweise|Dagegen|Manchmal",
        "conj_after": "weil|obwohl|während|wenn|da|sobald|nachdem|bevor|damit|falls",
        "conj_before": "Weil|Obwohl|Während|Wenn|Da|Sobald|Nachdem|Bevor|Falls",
        "coord": "und|aber|denn|doch",
        "preps": "mit:dat|für:acc|ohne:acc|nach:dat|bei:dat|durch:acc|aus:dat|in:dat|an:dat|von:dat|zu:dat|"
                 "gegen:acc|um:acc|unter:dat|neben:dat|vor:dat",
        "names": "Anna Keller|Jonas Brandt|Lena Vogt|Tobias Hartmann|Miriam Seidel|Felix Kühn|Sophie Lang|"
                 "Matthias Roth|Clara Winter|Lukas Berger|Greta Albrecht|Jan Sommer",
        "units": "km kg Stunden Meter Liter Minuten Tage",
    },
    "fr": {
        "nouns": "méthode/f question/f problème/m idée/f résultat/m processus/m détail/m changement/m plan/m "
                 "choix/m habitude/f saison/f communauté/f projet/m approche/f exemple/m modèle/m rapport/m "
                 "tradition/f ressource/f objectif/m risque/m avantage/m défi/m erreur/f leçon/f décennie/f "
                 "matin/m soir/m hiver/m été/m calendrier/m outil/m étape/f décision/f qualité/f surface/f "
                 "couche/f équilibre/m routine/f mesure/f facteur/m système/m quartier/m",
        "topics": {
            "gardening": "sol/m semis/m compost/m tomate/f haie/f serre/f paillage/m verger/m racine/f engrais/m "
                         "treillis/m récolte/f vivace/f arbuste/m graine/f floraison/f",
            "astronomy": "télescope/m galaxie/f orbite/f comète/f nébuleuse/f éclipse/f planète/f observatoire/m "
                         "météore/m constellation/f astéroïde/m lentille/f horizon/m satellite/m spectre/m étoile/f",
            "cooking": "recette/f four/m pâte/f sauce/f épice/f poêle/f bouillon/m oignon/m farine/f ail/m "
                       "dessert/m marinade/f cuisine/f beurre/m pâtisserie/f gratin/m",
            "local_history": "archive/f paroisse/f moulin/m charte/f monument/m port/m chemin_de_fer/m "
                             "recensement/m chapelle/f corporation/f pont/m maire/ma bourg/m manuscrit/m auberge/f "
                             "musée/m",
            "software": "compilateur/m fonction/f base_de_données/f serveur/m module/m variable/f interface/f "
                        "bibliothèque/f dépôt/m bogue/m requête/f processus_léger/m cache/m analyseur/m "
                        "déploiement/m framework/m",
            "travel": "itinéraire/m passeport/m auberge_de_jeunesse/f ferry/m bagage/m hameau/m littoral/m "
                      "billet/m guide/m gare/f sentier/m visa/m valise/f frontière/f aéroport/m marché/m",
            "finance": "budget/m hypothèque/f dividende/m portefeuille/m prêt/m facture/f retraite/f inflation/f "
                       "épargne/f impôt/m action/f obligation/f compte/m dépense/f commission/f devise/f",
            "health": "vitamine/f muscle/m sommeil/m régime/m clinique/f symptôme/m vaccin/m exercice/m stress/m "
                      "infirmière/fa cœur/m posture/f hydratation/f thérapie/f allergie/f protéine/f",
        },
        "adjectives": "simple complexe ancien|ancienne local moderne traditionnel|traditionnelle calme "
                      "lumineux|lumineuse sombre lourd léger|légère rapide lent pratique utile rare courant "
                      "frais|fraîche sec|sèche chaud froid régulier|régulière fiable économique coûteux|coûteuse "
                      "précoce tardif|tardive caché évident étroit large doux|douce solide fragile riche propre "
                      "surprenant détaillé saisonnier|saisonnière efficace familier|familière important "
                      "discret|discrète durable précis",
        "pre_adjectives": "grand petit bon|bonne jeune dernier|dernière premier|première",
        "verbs": "améliore exige décrit utilise change soutient explique protège demande montre réduit augmente "
                 "construit choisit compare prépare mesure teste enregistre suit remplace combine crée trouve "
                 "garde vérifie partage étudie organise observe rassemble influence révèle simplifie limite "
                 "prolonge produit répare ajuste transforme accompagne nourrit entretient analyse favorise",
        "adverbs": "souvent rarement généralement rapidement lentement soigneusement toujours parfois clairement "
                   "progressivement facilement fréquemment encore déjà certainement probablement surtout "
                   "ouvertement volontiers vraiment à_peine",
        "intensifiers": "très plutôt assez vraiment particulièrement étonnamment",
        "openers": "Pourtant|En pratique|Entre-temps|Par exemple|Dans bien des cas|Au début|Plus tard|"
                   "Étonnamment|Bien sûr|En règle générale|Au final|Heureusement|En revanche|Aujourd'hui|"
                   "L'an dernier|Dans la plupart des villes|Malgré tout|En bref|Parfois|Depuis peu",
        "conj_after": "parce que|lorsque|puisque|tandis que|si|quand|alors que|dès que",
        "conj_before": "Lorsque|Puisque|Si|Quand|Dès que|Alors que",
        "coord": "et|mais|car|donc",
        "preps": "avec|pour|sans|dans|sur|après|avant|pendant|selon|malgré|vers|sous|près de|autour de|"
                 "grâce à|face à",
        "names": "Camille Moreau|Julien Lefèvre|Claire Garnier|Antoine Rousseau|Margaux Fontaine|"
                 "Hugo Chevalier|Élise Girard|Thomas Lambert|Léa Mercier|Mathieu Bonnet|Inès Dupuis|Paul Perrin",
        "units": "km kg heures mètres litres minutes jours",
    },
    "es": {
        "nouns": "método/m pregunta/f problema/m idea/f resultado/m proceso/m detalle/m cambio/m plan/m "
                 "elección/f hábito/m temporada/f comunidad/f proyecto/m enfoque/m ejemplo/m patrón/m informe/m "
                 "tradición/f recurso/m objetivo/m riesgo/m ventaja/f desafío/m error/m lección/f década/f "
                 "mañana/f noche/f invierno/m verano/m calendario/m herramienta/f paso/m decisión/f calidad/f "
                 "superficie/f capa/f equilibrio/m rutina/f medida/f factor/m sistema/m barrio/m",
        "topics": {
            "gardening": "suelo/m plántula/f compost/m tomate/m seto/m invernadero/m acolchado/m huerto/m raíz/f "
                         "abono/m enrejado/m cosecha/f perenne/f arbusto/m semilla/f floración/f",
            "astronomy": "telescopio/m galaxia/f órbita/f cometa/m nebulosa/f eclipse/m planeta/m observatorio/m "
                         "meteoro/m constelación/f asteroide/m lente/f horizonte/m satélite/m espectro/m estrella/f",
            "cooking": "receta/f horno/m masa/f salsa/f especia/f sartén/f caldo/m cebolla/f harina/f ajo/m "
                       "postre/m adobo/m cocina/f mantequilla/f repostería/f lenteja/f",
            "local_history": "archivo/m parroquia/f molino/m fuero/m monumento/m puerto/m ferrocarril/m censo/m "
                             "capilla/f gremio/m puente/m alcalde/ma asentamiento/m manuscrito/m posada/f museo/m",
            "software": "compilador/m función/f base_de_datos/f servidor/m módulo/m variable/f interfaz/f "
                        "biblioteca/f repositorio/m fallo/m consulta/f hilo/m caché/f analizador/m despliegue/m "
                        "framework/m",
            "travel": "itinerario/m pasaporte/m albergue/m ferri/m equipaje/m aldea/f costa/f billete/m guía/f "
                      "estación/f sendero/m visado/m maleta/f frontera/f aeropuerto/m mercado/m",
            "finance": "presupuesto/m hipoteca/f dividendo/m cartera/f préstamo/m factura/f pensión/f inflación/f "
                       "ahorro/m impuesto/m acción/f bono/m cuenta/f gasto/m comisión/f divisa/f",
            "health": "vitamina/f músculo/m sueño/m dieta/f clínica/f síntoma/m vacuna/f ejercicio/m estrés/m "
                      "enfermera/fa corazón/m postura/f hidratación/f terapia/f alergia/f proteína/f",
        },
        "adjectives": "sencillo complejo nuevo antiguo local moderno tradicional pequeño grande tranquilo "
                      "luminoso oscuro pesado ligero rápido lento práctico útil raro común fresco seco cálido frío "
                      "constante fiable barato caro temprano tardío oculto evidente estrecho amplio suave fuerte "
                      "débil rico limpio sorprendente detallado estacional eficiente familiar importante discreto "
                      "duradero preciso",
        "verbs": "mejora necesita describe utiliza cambia apoya explica protege exige muestra reduce aumenta "
                 "construye elige compara prepara mide prueba registra sigue reemplaza combina crea encuentra "
                 "conserva revisa comparte estudia organiza observa reúne afecta revela simplifica limita amplía "
                 "produce repara ajusta transforma acompaña alimenta analiza favorece",
        "adverbs": "normalmente rápidamente lentamente cuidadosamente siempre claramente fácilmente todavía ya "
                   "seguramente probablemente apenas abiertamente realmente a_menudo a_veces poco_a_poco "
                   "con_frecuencia sobre_todo",
        "intensifiers": "muy bastante realmente especialmente sorprendentemente algo",
        "openers": "Sin embargo|En la práctica|Mientras tanto|Por ejemplo|En muchos casos|Al principio|"
                   "Más tarde|Sorprendentemente|Por supuesto|Por regla general|Al final|Por suerte|En cambio|"
                   "Hoy|El año pasado|En la mayoría de los pueblos|Aun así|En resumen|A veces|Desde hace poco",
        "conj_after": "porque|aunque|cuando|si|mientras|ya que|puesto que|en cuanto",
        "conj_before": "Aunque|Cuando|Si|Mientras|Ya que|En cuanto",
        "coord": "y|pero|pues|así que",
        "preps": "con|para|sin|en|sobre|tras|según|durante|hacia|bajo|desde|cerca de|alrededor de|frente a|"
                 "junto a|a pesar de",
        "names": "Lucía García|Javier Ortega|Carmen Navarro|Diego Romero|Elena Herrera|Pablo Castillo|"
                 "Marta Vidal|Andrés Molina|Sofía Serrano|Raúl Rubio|Inés Iglesias|Tomás Prieto",
        "units": "km kg horas metros litros minutos días",
    },
    "ru": {
        "nouns": "метод/m вопрос/m проблема/f идея/f результат/m процесс/m деталь/f изменение/n план/m выбор/m "
                 "привычка/f сезон/m сообщество/n проект/m подход/m пример/m отчёт/m традиция/f ресурс/m цель/f "
                 "риск/m преимущество/n задача/f ошибка/f урок/m десятилетие/n утро/n вечер/m зима/f лето/n "
                 "график/m инструмент/m шаг/m решение/n качество/n поверхность/f слой/m баланс/m режим/m "
                 "измерение/n фактор/m система/f сосед/ma",
        "topics": {
            "gardening": "почва/f рассада/f компост/m помидор/m изгородь/f теплица/f мульча/f огород/m "
                         "удобрение/n шпалера/f урожай/m многолетник/m кустарник/m грядка/f цветение/n полив/m",
            "astronomy": "телескоп/m галактика/f орбита/f комета/f туманность/f затмение/n планета/f "
                         "обсерватория/f метеор/m созвездие/n астероид/m линза/f горизонт/m спутник/m спектр/m "
                         "звезда/f",
            "cooking": "рецепт/m духовка/f тесто/n соус/m специя/f сковорода/f бульон/m лук/m мука/f чеснок/m "
                       "десерт/m маринад/m кухня/f масло/n выпечка/f чечевица/f",
            "local_history": "архив/m приход/m мельница/f грамота/f памятник/m причал/m вокзал/m перепись/f "
                             "часовня/f гильдия/f переезд/m мэр/ma поселение/n рукопись/f трактир/m музей/m",
            "software": "компилятор/m функция/f база/f сервер/m модуль/m интерфейс/m библиотека/f репозиторий/m "
                        "баг/m запрос/m поток/m кэш/m парсер/m развёртывание/n фреймворк/m конфигурация/f",
            "travel": "маршрут/m паспорт/m хостел/m паром/m рюкзак/m деревня/f побережье/n билет/m "
                      "путеводитель/m станция/f тропа/f виза/f чемодан/m граница/f аэропорт/m ярмарка/f",
            "finance": "бюджет/m ипотека/f дивиденд/m портфель/m кредит/m депозит/m пенсия/f инфляция/f "
                       "сбережение/n налог/m акция/f облигация/f расход/m комиссия/f валюта/f брокер/ma",
            "health": "витамин/m мышца/f отдых/m диета/f клиника/f симптом/m вакцина/f упражнение/n стресс/m "
                      "медсестра/fa осанка/f гидратация/f терапия/f аллергия/f иммунитет/m давление/n",
        },
        "adjectives": "простой сложный новый старый местный современный традиционный маленький большой тихий "
                      "яркий тёмный тяжёлый лёгкий быстрый медленный практичный полезный редкий обычный сухой "
                      "тёплый холодный надёжный дешёвый дорогой ранний поздний скрытый очевидный узкий широкий "
                      "мягкий сильный слабый богатый чистый удивительный подробный сезонный эффективный "
                      "знакомый важный древний летний зимний точный долгий крепкий",
        "verbs": "улучшает описывает использует меняет поддерживает объясняет защищает показывает снижает "
                 "увеличивает строит выбирает сравнивает готовит измеряет проверяет записывает сохраняет "
                 "заменяет сочетает создаёт находит изучает отслеживает упрощает ограничивает расширяет "
                 "производит настраивает организует наблюдает собирает раскрывает обсуждает определяет "
                 "формирует развивает учитывает укрепляет обновляет обеспечивает рассматривает",
        "adverbs": "часто редко обычно быстро медленно осторожно всегда иногда ясно постепенно легко регулярно "
                   "уже наверняка вероятно особенно едва открыто заметно тщательно",
        "intensifiers": "очень довольно весьма удивительно особенно слишком",
        "openers": "Однако,|На практике|Тем временем|Например,|Во многих случаях|Сначала|Позже|Удивительно, но|"
                   "Конечно,|Как правило,|В итоге|К счастью,|С другой стороны,|Сегодня|В прошлом году|"
                   "В большинстве городов|Тем не менее,|Короче говоря,|Иногда|С недавних пор",
        "conj_after": "потому что|хотя|когда|если|поскольку|пока|так как|после того как",
        "conj_before": "Хотя|Когда|Если|Поскольку|Пока|Так как",
        "coord": "а|но|и|поэтому",
        "preps": "в:prep|на:prep|о:prep|с:ins|над:ins|под:ins|перед:ins|для:gen|без:gen|после:gen|около:gen|"
                 "вокруг:gen|у:gen|к:dat|по:dat|через:acc|про:acc",
        "names": "Анна Смирнова|Игорь Волков|Мария Павлова|Дмитрий Орлов|Елена Соколова|Павел Зайцев|"
                 "Ольга Морозова|Сергей Лебедев|Наталья Кузнецова|Алексей Новиков|Ирина Фёдорова|Михаил Егоров",
        "units": "км кг ч м л мин сут",
    },
    "zh": {
        "nouns": "方法 问题 想法 结果 过程 细节 变化 计划 选择 习惯 季节 社区 项目 思路 例子 规律 记录 传统 资源 目标 "
                 "风险 好处 挑战 错误 经验 年代 早晨 晚上 冬天 夏天 日程 工具 步骤 决定 质量 表面 层次 平衡 节奏 测量 "
                 "因素 系统 环境 条件 作用 方向 基础 邻居",
        "topics": {
            "gardening": "土壤 幼苗 堆肥 番茄 篱笆 温室 覆盖物 果园 根系 肥料 花架 收成 多年生植物 灌木 种子 花期 菜园 浇水",
            "astronomy": "望远镜 星系 轨道 彗星 星云 日食 行星 天文台 流星 星座 小行星 镜片 地平线 卫星 光谱 恒星 月球",
            "cooking": "食谱 烤箱 面团 酱汁 香料 平底锅 高汤 洋葱 面粉 大蒜 甜点 腌料 厨房 黄油 糕点 扁豆 火候",
            "local_history": "档案馆 教区 磨坊 地方志 纪念碑 港口 铁路 人口普查 祠堂 行会 石桥 县长 村落 手稿 客栈 博物馆 老街",
            "software": "编译器 函数 数据库 服务器 模块 变量 接口 代码库 仓库 缺陷 查询 线程 缓存 解析器 部署 框架 日志",
            "travel": "行程 护照 青年旅舍 渡轮 行李 村庄 海岸线 车票 导游书 车站 步道 签证 行李箱 边境 机场 集市 古镇",
            "finance": "预算 房贷 股息 投资组合 贷款 发票 养老金 通货膨胀 储蓄 税款 股票 债券 账户 开支 手续费 汇率 经纪人",
            "health": "维生素 肌肉 睡眠 饮食 诊所 症状 疫苗 锻炼 压力 护士 心脏 姿势 水分 疗法 过敏 蛋白质 血压",
        },
        "adjectives": "重要 简单 复杂 新 旧 本地 现代 传统 小 大 安静 明亮 沉重 轻便 快速 缓慢 实用 有用 少见 常见 新鲜 "
                      "干燥 温暖 寒冷 稳定 可靠 便宜 昂贵 早期 隐蔽 明显 狭窄 宽阔 温和 强大 脆弱 丰富 干净 意外 详细 "
                      "季节性 高效 熟悉 古老 细致 合理 灵活",
        "verbs": "改善 需要 描述 使用 改变 支持 解释 保护 要求 展示 减少 增加 建立 选择 比较 准备 测量 测试 记录 遵循 "
                 "替换 结合 创造 发现 保持 检查 分享 研究 追踪 储存 塑造 平衡 修复 调整 整理 回顾 观察 收集 影响 揭示 "
                 "简化 限制 扩展 处理 产生 提高 优化 讨论",
        "adverbs": "经常 很少 通常 迅速 慢慢 仔细 总是 有时 逐渐 轻松 频繁 仍然 已经 一定 可能 主要 几乎 往往 始终 特别",
        "intensifiers": "很 非常 比较 相当 十分 格外",
        "openers": "然而，|实际上，|与此同时，|例如，|在很多情况下，|起初，|后来，|令人意外的是，|当然，|一般来说，|"
                   "最后，|幸运的是，|另一方面，|如今，|去年，|在大多数城镇，|即便如此，|简而言之，|有时候，|近年来，",
        "conj_after": "因为|由于|虽然|尽管",
        "conj_before": "因为…所以|虽然…但是|如果…就|既然…那么|只要…就|尽管…仍然",
        "coord": "而且|但是|同时|因此|所以",
        "preps": "在…中|在…上|在…方面|通过…|对于…来说|随着…的发展|围绕…",
        "names": "王丽|李明|张伟|刘芳|陈静|杨帆|赵磊|黄敏|周航|吴婷|徐然|孙悦",
        "units": "公里 公斤 小时 米 升 分钟 天 元",
    },
}

UI = {
    "en": {"home": "Home", "about": "About", "contact": "Contact", "privacy": "Privacy policy",
           "terms": "Terms of use", "search": "Search", "related": "Related articles",
           "cookie": "We use cookies to improve your experience on this site.", "accept": "Accept",
           "decline": "Decline", "rights": "All rights reserved.", "share": "Share this article",
           "subscribe": "Subscribe to our newsletter", "categories": "Categories", "archive": "Archive",
           "tags": "Tags", "next": "Next", "prev": "Previous", "not_found": "Page not found",
           "not_found_body": "The page you are looking for does not exist or has been moved.",
           "most_read": "Most read", "on_this_page": "On this page", "login": "Sign in", "menu": "Menu",
           "by": "By", "table": "Year|Item|Amount|Change", "email": "Your email address", "sitemap": "Sitemap"},
    "de": {"home": "Startseite", "about": "Über uns", "contact": "Kontakt", "privacy": "Datenschutz",
           "terms": "Impressum", "search": "Suche", "related": "Ähnliche Artikel",
           "cookie": "Wir verwenden Cookies, um Ihnen ein besseres Nutzungserlebnis zu bieten.",
           "accept": "Akzeptieren", "decline": "Ablehnen", "rights": "Alle Rechte vorbehalten.",
           "share": "Artikel teilen", "subscribe": "Newsletter abonnieren", "categories": "Kategorien",
           "archive": "Archiv", "tags": "Schlagwörter", "next": "Weiter", "prev": "Zurück",
           "not_found": "Seite nicht gefunden",
           "not_found_body": "Die gewünschte Seite existiert nicht oder wurde verschoben.",
           "most_read": "Meistgelesen", "on_this_page": "Auf dieser Seite", "login": "Anmelden", "menu": "Menü",
           "by": "Von", "table": "Jahr|Bereich|Menge|Veränderung", "email": "Ihre E-Mail-Adresse",
           "sitemap": "Seitenübersicht"},
    "fr": {"home": "Accueil", "about": "À propos", "contact": "Contact", "privacy": "Politique de confidentialité",
           "terms": "Mentions légales", "search": "Rechercher", "related": "Articles similaires",
           "cookie": "Nous utilisons des cookies pour améliorer votre expérience sur ce site.",
           "accept": "Accepter", "decline": "Refuser", "rights": "Tous droits réservés.",
           "share": "Partager cet article", "subscribe": "Abonnez-vous à notre lettre d'information",
           "categories": "Catégories", "archive": "Archives", "tags": "Mots-clés", "next": "Suivant",
           "prev": "Précédent", "not_found": "Page introuvable",
           "not_found_body": "La page que vous cherchez n'existe pas ou a été déplacée.",
           "most_read": "Les plus lus", "on_this_page": "Sur cette page", "login": "Se connecter", "menu": "Menu",
           "by": "Par", "table": "Année|Élément|Quantité|Variation", "email": "Votre adresse e-mail",
           "sitemap": "Plan du site"},
    "es": {"home": "Inicio", "about": "Quiénes somos", "contact": "Contacto", "privacy": "Política de privacidad",
           "terms": "Aviso legal", "search": "Buscar", "related": "Artículos relacionados",
           "cookie": "Utilizamos cookies para mejorar su experiencia en este sitio.", "accept": "Aceptar",
           "decline": "Rechazar", "rights": "Todos los derechos reservados.", "share": "Compartir este artículo",
           "subscribe": "Suscríbase a nuestro boletín", "categories": "Categorías", "archive": "Archivo",
           "tags": "Etiquetas", "next": "Siguiente", "prev": "Anterior", "not_found": "Página no encontrada",
           "not_found_body": "La página que busca no existe o ha sido trasladada.", "most_read": "Lo más leído",
           "on_this_page": "En esta página", "login": "Iniciar sesión", "menu": "Menú", "by": "Por",
           "table": "Año|Elemento|Cantidad|Variación", "email": "Su correo electrónico", "sitemap": "Mapa del sitio"},
    "ru": {"home": "Главная", "about": "О нас", "contact": "Контакты", "privacy": "Политика конфиденциальности",
           "terms": "Пользовательское соглашение", "search": "Поиск", "related": "Похожие статьи",
           "cookie": "Мы используем файлы cookie, чтобы сайт работал удобнее.", "accept": "Принять",
           "decline": "Отклонить", "rights": "Все права защищены.", "share": "Поделиться статьёй",
           "subscribe": "Подпишитесь на рассылку", "categories": "Рубрики", "archive": "Архив", "tags": "Теги",
           "next": "Далее", "prev": "Назад", "not_found": "Страница не найдена",
           "not_found_body": "Запрашиваемая страница не существует или была перемещена.",
           "most_read": "Самое читаемое", "on_this_page": "На этой странице", "login": "Войти", "menu": "Меню",
           "by": "Автор:", "table": "Год|Показатель|Значение|Изменение", "email": "Ваш адрес электронной почты",
           "sitemap": "Карта сайта"},
    "zh": {"home": "首页", "about": "关于我们", "contact": "联系我们", "privacy": "隐私政策", "terms": "使用条款",
           "search": "搜索", "related": "相关文章", "cookie": "本网站使用Cookie来改善您的浏览体验。", "accept": "接受",
           "decline": "拒绝", "rights": "版权所有。", "share": "分享本文", "subscribe": "订阅我们的通讯",
           "categories": "栏目", "archive": "归档", "tags": "标签", "next": "下一页", "prev": "上一页",
           "not_found": "页面未找到", "not_found_body": "您访问的页面不存在或已被移动。", "most_read": "热门阅读",
           "on_this_page": "本页目录", "login": "登录", "menu": "菜单", "by": "作者：", "table": "年份|项目|数量|变化",
           "email": "您的电子邮箱", "sitemap": "网站地图"},
}

TOPIC_NAMES = {
    "en": "Gardening|Astronomy|Cooking|Local history|Software|Travel|Finance|Health",
    "de": "Garten|Astronomie|Kochen|Ortsgeschichte|Software|Reisen|Finanzen|Gesundheit",
    "fr": "Jardinage|Astronomie|Cuisine|Histoire locale|Logiciel|Voyage|Finances|Santé",
    "es": "Jardinería|Astronomía|Cocina|Historia local|Software|Viajes|Finanzas|Salud",
    "ru": "Сад и огород|Астрономия|Кулинария|Краеведение|Программирование|Путешествия|Финансы|Здоровье",
    "zh": "园艺|天文|烹饪|地方史|软件|旅行|理财|健康",
}

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября декабря",
    "zh": "1 2 3 4 5 6 7 8 9 10 11 12",
}

SHORT_STUBS = {
    "en": "This page is under construction.|Coming soon.|Thank you for your message. We will reply shortly.",
    "de": "Diese Seite befindet sich im Aufbau.|Demnächst verfügbar.|Vielen Dank für Ihre Nachricht.",
    "fr": "Cette page est en construction.|Bientôt disponible.|Merci pour votre message.",
    "es": "Esta página está en construcción.|Próximamente.|Gracias por su mensaje.",
    "ru": "Страница находится в разработке.|Скоро здесь что-то появится.|Спасибо за ваше сообщение.",
    "zh": "本页面正在建设中。|敬请期待。|感谢您的留言，我们会尽快回复。",
}

REPEATED_LINES = {
    "en": "Please enable JavaScript to continue.|This domain may be for sale. Contact the owner.|"
          "Loading, please wait...|Subscribe to our newsletter for weekly updates.|Error: service temporarily unavailable.",
    "de": "Bitte aktivieren Sie JavaScript.|Diese Domain steht zum Verkauf.|Wird geladen, bitte warten...|"
          "Jetzt den Newsletter abonnieren!",
    "fr": "Veuillez activer JavaScript pour continuer.|Ce domaine est à vendre.|Chargement en cours...|"
          "Inscrivez-vous à la lettre d'information !",
    "es": "Active JavaScript para continuar.|Este dominio está en venta.|Cargando, espere por favor...|"
          "¡Suscríbase a nuestro boletín!",
    "ru": "Включите JavaScript, чтобы продолжить.|Этот домен продаётся.|Загрузка, пожалуйста, подождите...|"
          "Подпишитесь на нашу рассылку!",
    "zh": "请启用JavaScript后继续。|本域名正在出售。|正在加载，请稍候……|欢迎订阅我们的每周通讯！",
}

SPAM_WORDS = {
    "en": "cheap|best price|buy now|discount|pills|casino|bonus|free shipping|online|replica watches|"
          "payday loans|weight loss|crypto profit|no prescription|limited offer|100% guaranteed|win big|"
          "hot deals|free spins|lowest price",
    "de": "günstig|billig kaufen|Rabatt|Casino Bonus|Kredit sofort|schnell abnehmen|gratis|Angebot|Bestpreis|"
          "jetzt kaufen|Gewinnspiel|ohne Rezept",
    "fr": "pas cher|meilleur prix|promo|casino en ligne|bonus gratuit|crédit rapide|maigrir vite|soldes|"
          "livraison gratuite|acheter maintenant",
    "es": "barato|mejor precio|oferta|casino online|bono gratis|préstamo rápido|adelgazar rápido|descuento|"
          "envío gratis|comprar ahora",
    "ru": "дешево|купить|скидка|казино|бонус|кредит онлайн|бесплатно|акция|похудеть быстро|лучшая цена|"
          "без рецепта|выигрыш",
    "zh": "便宜|特价|优惠|免费|包邮|彩票|返利|代购|秒杀|低价|贷款|减肥",
}
SPAM_FILLER = "!!!|$$$|>>>|click here|100%|www|***|NOW|TOP|№1"

CODE_NOUNS = split_words("user cache queue worker token record batch event payload session config index shard "
                         "buffer page item node job task request response client schema table field value key "
                         "entry offset retry timeout path stream chunk digest score")
CODE_VERBS = split_words("load parse fetch build merge filter split encode decode flush render sync validate "
                         "normalize compress resolve dedupe")

LOCALE = {
    "en": {"thousands": ",", "decimal": ".", "percent": "%", "unit_sep": " "},
    "de": {"thousands": ".", "decimal": ",", "percent": "\xa0%", "unit_sep": " "},
    "fr": {"thousands": "\xa0", "decimal": ",", "percent": "\xa0%", "unit_sep": "\xa0"},
    "es": {"thousands": ".", "decimal": ",", "percent": "\xa0%", "unit_sep": " "},
    "ru": {"thousands": "\xa0", "decimal": ",", "percent": "%", "unit_sep": "\xa0"},
    "zh": {"thousands": ",", "decimal": ".", "percent": "%", "unit_sep": ""},
}
TEMPLATE_WEIGHTS = (("svo", 20), ("svo_pp", 14), ("opener", 10), ("sub_after", 10), ("sub_before", 7),
                    ("adverb", 8), ("copula", 6), ("year", 5), ("question", 3), ("relative", 6),
                    ("compound", 7), ("list", 3))
HAN_RE = re.compile(r"[\u4e00-\u9fff]")
JITTER = 12


class Lexicon:
    """Parsed word lists of one language."""

    def __init__(self, raw: dict) -> None:
        self.nouns = parse_nouns(raw["nouns"])
        self.topics = {topic: parse_nouns(spec) for topic, spec in raw["topics"].items()}
        self.adjectives = split_words(raw["adjectives"])
        self.pre_adjectives = split_words(raw.get("pre_adjectives", ""))
        self.verbs = split_words(raw["verbs"])
        self.adverbs = split_words(raw["adverbs"])
        self.intensifiers = split_words(raw["intensifiers"])
        self.openers = raw["openers"].split("|")
        self.conj_after = raw["conj_after"].split("|")
        self.conj_before = raw["conj_before"].split("|")
        self.coord = raw["coord"].split("|")
        self.preps = raw["preps"].split("|")
        self.names = raw["names"].split("|")
        self.units = split_words(raw["units"])


def interleave(primary: list, secondary: list) -> list:
    """Merge two rankings, two primary items for each secondary one, so topic words lead."""
    merged, i, j = [], 0, 0
    while i < len(primary) or j < len(secondary):
        merged.extend(primary[i:i + 2])
        merged.extend(secondary[j:j + 1])
        i, j = i + 2, j + 1
    return merged


def capitalize(text: str) -> str:
    """Upper-case the first letter, skipping leading punctuation such as '¿' but not digits."""
    for i, char in enumerate(text):
        if char.isalpha():
            return text[:i] + char.upper() + text[i + 1:]
        if char.isdigit():
            break
    return text


class Writer:
    """Per-article word source: Zipf pools over the language's word ranking, locally jittered per article.

    The shared ranking gives the corpus a Zipf-like global word distribution; the jitter gives every
    article its own favourite words, so unrelated articles do not share long n-grams.
    """

    def __init__(self, grammar: Grammar, topic: str, rng: Rng) -> None:
        lex = grammar.lex
        self.grammar, self.topic, self.rng = grammar, topic, rng
        other_topic = rng.choice([name for name in TOPICS if name != topic])
        nouns = interleave(rng.jittered(lex.topics[topic], JITTER), rng.jittered(lex.nouns, JITTER))
        self._nouns = Pool(nouns + rng.sample(lex.topics[other_topic], 3), offset=1)
        self._adjectives = Pool(rng.jittered(lex.adjectives, JITTER), offset=1)
        self._pre_adjectives = Pool(rng.shuffled(lex.pre_adjectives))
        self._verbs = Pool(rng.jittered(lex.verbs, JITTER), offset=1)
        self._adverbs = Pool(rng.jittered(lex.adverbs, JITTER), offset=1)
        self._intensifiers = Pool(rng.shuffled(lex.intensifiers))
        self._openers = Pool(rng.shuffled(lex.openers), offset=1)
        self._conj_after = Pool(rng.shuffled(lex.conj_after))
        self._conj_before = Pool(rng.shuffled(lex.conj_before))
        self._coord = Pool(rng.shuffled(lex.coord))
        self._preps = Pool(rng.shuffled(lex.preps), offset=1)
        self._names = Pool(rng.shuffled(lex.names))
        self._units = Pool(rng.shuffled(lex.units))
        self._templates = Weighted([(name, weight * rng.between(5, 15)) for name, weight in TEMPLATE_WEIGHTS])

    def noun(self) -> Noun:
        """Draw a noun."""
        return self._nouns.draw(self.rng)

    def adjective(self) -> str:
        """Draw an adjective (lexicon form)."""
        return self._adjectives.draw(self.rng)

    def pre_adjective(self) -> str:
        """Draw a prenominal adjective (French)."""
        return self._pre_adjectives.draw(self.rng)

    def verb(self) -> str:
        """Draw a verb (lexicon form)."""
        return self._verbs.draw(self.rng)

    def adverb(self) -> str:
        """Draw an adverb."""
        return self._adverbs.draw(self.rng)

    def intensifier(self) -> str:
        """Draw a degree adverb."""
        return self._intensifiers.draw(self.rng)

    def opener(self) -> str:
        """Draw a sentence-initial adverbial."""
        return self._openers.draw(self.rng)

    def conj_after(self) -> str:
        """Draw a subordinator for a trailing clause."""
        return self._conj_after.draw(self.rng)

    def conj_before(self) -> str:
        """Draw a subordinator for a leading clause."""
        return self._conj_before.draw(self.rng)

    def coord(self) -> str:
        """Draw a coordinating conjunction."""
        return self._coord.draw(self.rng)

    def prep(self) -> str:
        """Draw a preposition spec."""
        return self._preps.draw(self.rng)

    def name(self) -> str:
        """Draw a person's name."""
        return self._names.draw(self.rng)

    def template(self) -> str:
        """Draw a sentence template name."""
        return self._templates.draw(self.rng)

    def year(self) -> int:
        """Draw a plausible year."""
        return 1850 + self.rng.below(174)

    def small(self) -> int:
        """Draw a small count."""
        return self.rng.between(3, 12)

    def quantity(self) -> str:
        """Draw a number with a unit or percent sign, formatted for the language."""
        loc, rng = self.grammar.locale, self.rng
        roll = rng.random()
        if roll < 0.15:
            return f"{rng.between(2, 97)}{loc['percent']}"
        if roll < 0.4:
            number = f"{rng.between(1, 99)}{loc['decimal']}{rng.below(10)}"
        elif roll < 0.6:
            value = rng.between(1000, 99999)
            number = f"{value // 1000}{loc['thousands']}{value % 1000:03d}"
        else:
            number = str(rng.between(2, 99))
        return number + loc["unit_sep"] + self._units.draw(rng)

    def change(self) -> str:
        """Draw a signed percentage change."""
        loc, rng = self.grammar.locale, self.rng
        sign = "+" if rng.chance(0.6) else "−"
        return f"{sign}{rng.below(40)}{loc['decimal']}{rng.below(10)}{loc['percent']}"


class Grammar:
    """Sentence, title and heading realiser for one language.

    Subclasses implement one ``t_<name>`` method per template in TEMPLATE_WEIGHTS (plain clause, clause with
    a prepositional phrase, fronted adverbial, trailing or leading subordinate clause, adverb, copula, year,
    question, relative clause, coordination, colon list); each returns the sentence body and whether it is
    a question.
    """

    code = ""
    space = " "
    full_stop = "."
    question_mark = "?"

    def __init__(self) -> None:
        self.lex = Lexicon(LEXICON[self.code])
        self.locale = LOCALE[self.code]
        self.ui = UI[self.code]
        self.months = MONTHS[self.code].split()

    def sentence(self, w: Writer) -> str:
        """Realise one sentence from a randomly drawn template."""
        text, question = getattr(self, "t_" + w.template())(w)
        return capitalize(self.polish(text)) + (self.question_mark if question else self.full_stop)

    def paragraph(self, w: Writer, sentences: int) -> str:
        """Join several sentences into a paragraph."""
        return self.space.join(self.sentence(w) for _ in range(sentences))

    def polish(self, text: str) -> str:
        """Apply orthographic contractions and elisions."""
        return text

    def quote(self, w: Writer) -> tuple[str, str]:
        """Return a quoted sentence and its attribution."""
        return f"“{self.sentence(w)}”", f"— {w.name()}"

    def date(self, year: int, month: int, day: int) -> str:
        """Format a calendar date the way the language writes it."""
        name = self.months[month - 1]
        return {"en": f"{name} {day}, {year}", "de": f"{day}. {name} {year}", "fr": f"{day} {name} {year}",
                "es": f"{day} de {name} de {year}", "ru": f"{day} {name} {year}\xa0г.",
                "zh": f"{year}年{month}月{day}日"}[self.code]

    def byline(self, w: Writer, year: int, month: int, day: int) -> str:
        """Return the author and date line."""
        return f"{self.ui['by']} {w.name()} · {self.date(year, month, day)}"

    def title(self, w: Writer) -> str:
        """Return an article title."""
        raise NotImplementedError

    def heading(self, w: Writer) -> str:
        """Return a section heading."""
        raise NotImplementedError

    def list_item(self, w: Writer) -> str:
        """Return one bullet-list entry."""
        raise NotImplementedError


def en_suffix_s(word: str) -> str:
    """English plural or third-person -s."""
    if word.endswith(("s", "x", "z", "ch", "sh")) or (word.endswith("o") and word[-2] not in "aeiou"):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def en_gerund(verb: str) -> str:
    """English -ing form."""
    if verb.endswith("e") and not verb.endswith("ee"):
        return verb[:-1] + "ing"
    return verb + "ing"


EN_SMALL_WORDS = {"a", "an", "the", "of", "to", "and", "on", "in", "for", "your", "about", "with"}


class English(Grammar):
    """English: articles with a/an, plurals, third-person agreement."""

    code = "en"

    def adjectives(self, w: Writer) -> list[str]:
        """Zero to two attributive adjectives, sometimes intensified."""
        roll = w.rng.random()
        adjectives = [w.adjective() for _ in range(0 if roll < 0.5 else 1 if roll < 0.9 else 2)]
        if len(adjectives) == 2 and adjectives[0] == adjectives[1]:
            adjectives.pop()
        if adjectives and w.rng.chance(0.1):
            adjectives[0] = f"{w.intensifier()} {adjectives[0]}"
        return adjectives

    def np(self, w: Writer, plural: bool | None = None) -> tuple[str, bool]:
        """Noun phrase and whether it is plural."""
        noun, rng = w.noun(), w.rng
        if plural is None:
            plural = not noun.mass and rng.chance(0.2)
        if plural:
            det = rng.choice(("the", "the", "these", "many", "several", "some", "our", "most", str(w.small())))
            head = en_suffix_s(noun.word)
        elif noun.mass:
            det, head = rng.choice(("the", "the", "this", "our", "", "enough", "more")), noun.word
        else:
            det, head = rng.choice(("the", "the", "the", "a", "a", "this", "every", "our", "each", "that")), noun.word
        words = self.adjectives(w) + [head]
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return " ".join(([det] if det else []) + words), plural

    def subject(self, w: Writer) -> tuple[str, bool]:
        """Subject: usually a noun phrase, sometimes a person."""
        if w.rng.chance(0.06):
            return w.name(), False
        return self.np(w)

    def verb(self, w: Writer, plural: bool) -> str:
        """Finite present-tense verb agreeing with the subject."""
        verb = w.verb()
        return verb if plural else en_suffix_s(verb)

    def clause(self, w: Writer, adverb: bool = False) -> str:
        """Subject, verb and object."""
        subject, plural = self.subject(w)
        middle = f"{w.adverb()} " if adverb else ""
        return f"{subject} {middle}{self.verb(w, plural)} {self.np(w)[0]}"

    def pp(self, w: Writer) -> str:
        """Prepositional phrase."""
        return f"{w.prep()} {self.np(w)[0]}"

    def t_svo(self, w):
        return self.clause(w), False

    def t_svo_pp(self, w):
        return f"{self.clause(w)} {self.pp(w)}", False

    def t_opener(self, w):
        return f"{w.opener()}, {self.clause(w)}", False

    def t_sub_after(self, w):
        return f"{self.clause(w)} {w.conj_after()} {self.clause(w)}", False

    def t_sub_before(self, w):
        return f"{w.conj_before()} {self.clause(w)}, {self.clause(w)}", False

    def t_adverb(self, w):
        tail = f" {self.pp(w)}" if w.rng.chance(0.4) else ""
        return self.clause(w, adverb=True) + tail, False

    def t_copula(self, w):
        subject, plural = self.np(w)
        predicate = w.adjective()
        if w.rng.chance(0.4):
            predicate = f"{w.intensifier()} {predicate}"
        if w.rng.chance(0.3):
            predicate += f" and {w.adjective()}"
        tail = f" {self.pp(w)}" if w.rng.chance(0.3) else ""
        return f"{subject} {'are' if plural else 'is'} {predicate}{tail}", False

    def t_year(self, w):
        lead = f"{w.rng.choice(('In', 'By', 'Since', 'Until'))} {w.year()}"
        if w.rng.chance(0.5):
            return f"{lead}, {self.clause(w)}", False
        subject, plural = self.subject(w)
        amount = w.rng.choice(("about ", "nearly ", "almost ", "over ", ""))
        return f"{lead}, {subject} {self.verb(w, plural)} {amount}{w.quantity()} of {self.np(w)[0]}", False

    def t_question(self, w):
        subject, plural = self.np(w)
        wh = w.rng.choice(("Why", "How", "When", "How often", "Where"))
        return f"{wh} {'do' if plural else 'does'} {subject} {w.verb()} {self.np(w)[0]}", True

    def t_relative(self, w):
        subject, plural = self.np(w)
        return (f"{subject} that {self.verb(w, plural)} {self.np(w)[0]} also "
                f"{self.verb(w, plural)} {self.np(w)[0]}"), False

    def t_compound(self, w):
        return f"{self.clause(w)}, {w.coord()} {self.clause(w)}", False

    def t_list(self, w):
        items = [self.np(w)[0] for _ in range(3)]
        return f"{self.clause(w)}: {items[0]}, {items[1]} and {items[2]}", False

    def title_case(self, text: str) -> str:
        """Capitalise major words."""
        words = text.split(" ")
        return " ".join(word if i and word in EN_SMALL_WORDS else capitalize(word) for i, word in enumerate(words))

    def title(self, w):
        noun, other, adjective = w.noun().word, w.noun().word, w.adjective()
        variant = w.rng.below(6)
        if variant == 0:
            text = f"how to {w.verb()} the {adjective} {noun}"
        elif variant == 1:
            text = f"{w.small()} {adjective} ways to {w.verb()} your {noun}"
        elif variant == 2:
            text = f"why the {noun} {en_suffix_s(w.verb())} the {other}"
        elif variant == 3:
            text = f"a {adjective} guide to {en_suffix_s(noun)}"
        elif variant == 4:
            text = f"notes on {adjective} {en_suffix_s(noun)} and the {other}"
        else:
            text = f"{en_gerund(w.verb())} the {noun}: {adjective} lessons from {w.year()}"
        if text.startswith("a ") and adjective[0] in "aeiou":
            text = "an" + text[1:]
        return self.title_case(text)

    def heading(self, w):
        variant = w.rng.below(5)
        if variant == 0:
            return capitalize(f"{w.adjective()} {w.noun().word}")
        if variant == 1:
            return f"The {w.noun().word} and the {w.noun().word}"
        if variant == 2:
            return capitalize(f"{en_gerund(w.verb())} the {w.noun().word}")
        if variant == 3:
            return capitalize(f"{w.adjective()} {en_suffix_s(w.noun().word)}")
        return f"Does the {w.noun().word} {w.verb()} the {w.noun().word}?"

    def list_item(self, w):
        if w.rng.chance(0.4):
            return capitalize(f"{w.verb()} the {w.noun().word}")
        item = capitalize(" ".join(self.adjectives(w) + [w.noun().word]))
        return f"{item} ({w.quantity()})" if w.rng.chance(0.3) else item


DE_DETERMINERS = {
    "der": {"nom": ("der", "die", "das"), "acc": ("den", "die", "das"), "dat": ("dem", "der", "dem")},
    "dies": {"nom": ("dieser", "diese", "dieses"), "acc": ("diesen", "diese", "dieses"),
             "dat": ("diesem", "dieser", "diesem")},
    "jed": {"nom": ("jeder", "jede", "jedes"), "acc": ("jeden", "jede", "jedes"), "dat": ("jedem", "jeder", "jedem")},
    "ein": {"nom": ("ein", "eine", "ein"), "acc": ("einen", "eine", "ein"), "dat": ("einem", "einer", "einem")},
    "unser": {"nom": ("unser", "unsere", "unser"), "acc": ("unseren", "unsere", "unser"),
              "dat": ("unserem", "unserer", "unserem")},
}
DE_ENDINGS = {
    "weak": {"nom": ("e", "e", "e"), "acc": ("en", "e", "e"), "dat": ("en", "en", "en")},
    "mixed": {"nom": ("er", "e", "es"), "acc": ("en", "e", "es"), "dat": ("en", "en", "en")},
    "strong": {"nom": ("er", "e", "es"), "acc": ("en", "e", "es"), "dat": ("em", "er", "em")},
}
DE_DECLENSION = {"der": "weak", "dies": "weak", "jed": "weak", "ein": "mixed", "unser": "mixed", "": "strong"}
DE_CONTRACTIONS = (("in dem ", "im "), ("an dem ", "am "), ("bei dem ", "beim "), ("von dem ", "vom "),
                   ("zu dem ", "zum "), ("zu der ", "zur "))
GENDER_INDEX = {"m": 0, "f": 1, "n": 2}


class German(Grammar):
    """German: three genders, nominative/accusative/dative, V2 main clauses and verb-final subclauses."""

    code = "de"

    def np(self, w: Writer, case: str, declension: str = "") -> tuple[str, Noun]:
        """Noun phrase in the given case; declension 'strong' forces a bare noun."""
        noun, rng = w.noun(), w.rng
        if declension == "strong":
            kind = ""
        elif noun.mass:
            kind = rng.choice(("der", "der", "", "dies"))
        else:
            kind = rng.choice(("der", "der", "der", "ein", "ein", "dies", "jed", "unser"))
        gender = GENDER_INDEX[noun.gender]
        ending = DE_ENDINGS[DE_DECLENSION[kind]][case][gender]
        roll = rng.random()
        adjectives = [w.adjective() + ending for _ in range(0 if roll < 0.5 else 1 if roll < 0.9 else 2)]
        if len(adjectives) == 2 and adjectives[0] == adjectives[1]:
            adjectives.pop()
        if adjectives and rng.chance(0.1):
            adjectives[0] = f"{w.intensifier()} {adjectives[0]}"
        det = [DE_DETERMINERS[kind][case][gender]] if kind else []
        return " ".join(det + adjectives + [noun.word]), noun

    def subject(self, w: Writer) -> tuple[str, Noun | None]:
        """Subject noun phrase or person."""
        if w.rng.chance(0.06):
            return w.name(), None
        return self.np(w, "nom")

    def pp(self, w: Writer) -> str:
        """Prepositional phrase with the case the preposition governs."""
        prep, _, case = w.prep().partition(":")
        phrase = f"{prep} {self.np(w, case)[0]} "
        for full, short in DE_CONTRACTIONS:
            if phrase.startswith(full):
                phrase = short + phrase[len(full):]
        return phrase.strip()

    def main(self, w: Writer, front: str = "", adverb: bool = False) -> str:
        """Main clause with the finite verb in second position."""
        subject, verb, obj = self.subject(w)[0], w.verb(), self.np(w, "acc")[0]
        middle = f" {w.adverb()}" if adverb else ""
        if front:
            return f"{front} {verb} {subject}{middle} {obj}"
        return f"{subject} {verb}{middle} {obj}"

    def sub(self, w: Writer, conj: str) -> str:
        """Subordinate clause with the verb last."""
        middle = f" {w.adverb()}" if w.rng.chance(0.3) else ""
        return f"{conj} {self.subject(w)[0]}{middle} {self.np(w, 'acc')[0]} {w.verb()}"

    def t_svo(self, w):
        return self.main(w), False

    def t_svo_pp(self, w):
        return f"{self.main(w)} {self.pp(w)}", False

    def t_opener(self, w):
        return self.main(w, front=w.opener()), False

    def t_sub_after(self, w):
        return f"{self.main(w)}, {self.sub(w, w.conj_after())}", False

    def t_sub_before(self, w):
        subject, verb, obj = self.subject(w)[0], w.verb(), self.np(w, "acc")[0]
        return f"{self.sub(w, w.conj_before())}, {verb} {subject} {obj}", False

    def t_adverb(self, w):
        tail = f" {self.pp(w)}" if w.rng.chance(0.4) else ""
        return self.main(w, adverb=True) + tail, False

    def t_copula(self, w):
        predicate = w.adjective()
        if w.rng.chance(0.4):
            predicate = f"{w.intensifier()} {predicate}"
        if w.rng.chance(0.3):
            predicate += f" und {w.adjective()}"
        return f"{self.np(w, 'nom')[0]} ist {predicate}", False

    def t_year(self, w):
        year = w.year()
        front = w.rng.choice((f"Im Jahr {year}", f"Seit {year}", f"Bis {year}",
                              f"Im {self.months[w.rng.below(12)]} {year}"))
        if w.rng.chance(0.5):
            return self.main(w, front=front), False
        amount = w.rng.choice(("etwa ", "fast ", "rund ", "über ", ""))
        return f"{front} {w.verb()} {self.subject(w)[0]} {amount}{w.quantity()}", False

    def t_question(self, w):
        wh = w.rng.choice(("Warum ", "Wann ", "Wie oft ", "Wie ", ""))
        return f"{wh}{w.verb()} {self.subject(w)[0]} {self.np(w, 'acc')[0]}", True

    def t_relative(self, w):
        subject, noun = self.np(w, "nom")
        pronoun = ("der", "die", "das")[GENDER_INDEX[noun.gender]]
        return (f"{subject}, {pronoun} {self.np(w, 'acc')[0]} {w.verb()}, {w.verb()} auch "
                f"{self.np(w, 'acc')[0]}"), False

    def t_compound(self, w):
        return f"{self.main(w)}, {w.coord()} {self.main(w)}", False

    def t_list(self, w):
        items = [self.np(w, "acc")[0] for _ in range(3)]
        return f"{self.main(w)}: {items[0]}, {items[1]} und {items[2]}", False

    def title(self, w):
        variant = w.rng.below(6)
        if variant == 0:
            return f"{w.small()} Tipps für {self.np(w, 'acc')[0]}"
        if variant == 1:
            return f"Warum {self.subject(w)[0]} {self.np(w, 'acc')[0]} {w.verb()}"
        if variant == 2:
            return capitalize(f"{self.np(w, 'nom', 'strong')[0]} und {self.np(w, 'nom', 'strong')[0]}")
        if variant == 3:
            return f"Ein Leitfaden für {self.np(w, 'acc')[0]}"
        if variant == 4:
            return f"Wie {self.subject(w)[0]} {self.np(w, 'acc')[0]} {w.verb()}"
        return capitalize(f"{self.np(w, 'nom')[0]}: {w.small()} Fragen aus dem Jahr {w.year()}")

    def heading(self, w):
        variant = w.rng.below(4)
        if variant == 0:
            return capitalize(self.np(w, "nom", "strong")[0])
        if variant == 1:
            return f"{w.noun().word} und {w.noun().word}"
        if variant == 2:
            return f"Warum {self.subject(w)[0]} {self.np(w, 'acc')[0]} {w.verb()}?"
        return capitalize(self.np(w, "nom")[0])

    def list_item(self, w):
        item = capitalize(self.np(w, "nom", "strong")[0])
        return f"{item} ({w.quantity()})" if w.rng.chance(0.3) else item


def romance_feminine(spec: str, lang: str) -> str:
    """Feminine form of a French or Spanish adjective given as 'masc' or 'masc|fem'."""
    masculine, _, feminine = spec.partition("|")
    if feminine:
        return feminine
    if lang == "fr":
        return masculine if masculine.endswith("e") else masculine + "e"
    return masculine[:-1] + "a" if masculine.endswith("o") else masculine


FR_VOWEL = r"(?=[aeiouyéèêëàâîïôûœAEIOUYÉÈÊÀÂÎÔÛŒ]|h(?:iver|orizon|abitude|ydratation|ypothèque|eure|istoire))"
FR_RULES = (
    (re.compile(r"\b([Ll])[ea] " + FR_VOWEL), r"\1'"),
    (re.compile(r"\b([Cc])e " + FR_VOWEL), r"\1et "),
    (re.compile(r"\b([Dd]|[Qq]u|[Ll]orsqu|[Pp]uisqu)e " + FR_VOWEL), r"\1'"),
    (re.compile(r"\bde le\b"), "du"),
    (re.compile(r"\bà le\b"), "au"),
)
ES_RULES = (
    (re.compile(r"\bde el\b"), "del"),
    (re.compile(r"\ba el\b"), "al"),
    (re.compile(r"\by (?=[iI]|hi)"), "e "),
)


class Romance(Grammar):
    """Shared French/Spanish realiser: gendered determiners, postnominal agreeing adjectives."""

    determiners: dict = {}
    copula = ""
    relative_also = ""
    and_word = ""
    rules: tuple = ()

    def polish(self, text):
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text

    def adj(self, spec: str, gender: str) -> str:
        """Agree an adjective with a noun's gender."""
        return romance_feminine(spec, self.code) if gender == "f" else spec.partition("|")[0]

    def np(self, w: Writer, bare: bool = False) -> tuple[str, Noun]:
        """Noun phrase; bare drops the determiner (for list entries)."""
        noun, rng = w.noun(), w.rng
        words = [] if bare else [rng.choice(self.determiners[noun.gender])]
        if self.lex.pre_adjectives and rng.chance(0.08):
            words.append(self.adj(w.pre_adjective(), noun.gender))
        words.append(noun.word)
        roll = rng.random()
        adjectives = [self.adj(w.adjective(), noun.gender) for _ in range(0 if roll < 0.5 else 1 if roll < 0.9 else 2)]
        if len(adjectives) == 2:
            adjectives = [adjectives[0]] if adjectives[0] == adjectives[1] else [f"{adjectives[0]} {self.and_word} {adjectives[1]}"]
        if adjectives and rng.chance(0.1):
            adjectives[0] = f"{w.intensifier()} {adjectives[0]}"
        return " ".join(words + adjectives), noun

    def subject(self, w: Writer) -> str:
        """Subject noun phrase or person."""
        return w.name() if w.rng.chance(0.06) else self.np(w)[0]

    def clause(self, w: Writer, adverb: bool = False) -> str:
        """Subject, verb, optional adverb, object."""
        middle = f" {w.adverb()}" if adverb else ""
        return f"{self.subject(w)} {w.verb()}{middle} {self.np(w)[0]}"

    def pp(self, w: Writer) -> str:
        """Prepositional phrase."""
        return f"{w.prep()} {self.np(w)[0]}"

    def t_svo(self, w):
        return self.clause(w), False

    def t_svo_pp(self, w):
        return f"{self.clause(w)} {self.pp(w)}", False

    def t_opener(self, w):
        return f"{w.opener()}, {self.clause(w)}", False

    def t_sub_after(self, w):
        return f"{self.clause(w)} {w.conj_after()} {self.clause(w)}", False

    def t_sub_before(self, w):
        return f"{w.conj_before().lower()} {self.clause(w)}, {self.clause(w)}", False

    def t_adverb(self, w):
        tail = f" {self.pp(w)}" if w.rng.chance(0.4) else ""
        return self.clause(w, adverb=True) + tail, False

    def t_copula(self, w):
        subject, noun = self.np(w)
        predicate = self.adj(w.adjective(), noun.gender)
        if w.rng.chance(0.4):
            predicate = f"{w.intensifier()} {predicate}"
        if w.rng.chance(0.3):
            predicate += f" {self.and_word} {self.adj(w.adjective(), noun.gender)}"
        return f"{subject} {self.copula} {predicate}", False

    def t_relative(self, w):
        return (f"{self.np(w)[0]} {self.relative_also[0]} {w.verb()} {self.np(w)[0]} {w.verb()} "
                f"{self.relative_also[1]} {self.np(w)[0]}"), False

    def t_compound(self, w):
        return f"{self.clause(w)}, {w.coord()} {self.clause(w)}", False

    def list_item(self, w):
        item = capitalize(self.np(w, bare=True)[0])
        return f"{item} ({w.quantity()})" if w.rng.chance(0.3) else item


class French(Romance):
    """French: elision, contractions and spaced high punctuation."""

    code = "fr"
    question_mark = "\xa0?"
    determiners = {"m": ("le", "le", "le", "un", "un", "ce", "chaque", "notre"),
                   "f": ("la", "la", "la", "une", "une", "cette", "chaque", "notre")}
    copula = "est"
    relative_also = ("qui", "aussi")
    and_word = "et"
    rules = FR_RULES

    def t_year(self, w):
        year = w.year()
        lead = w.rng.choice((f"En {year}", f"Depuis {year}", f"En {self.months[w.rng.below(12)]} {year}"))
        return f"{lead}, {self.clause(w)}", False

    def t_question(self, w):
        return f"{w.rng.choice(('Pourquoi', 'Comment', 'Est-ce que', 'Quand'))} {self.clause(w)}", True

    def t_list(self, w):
        items = [self.np(w)[0] for _ in range(3)]
        return f"{self.clause(w)}\xa0: {items[0]}, {items[1]} et {items[2]}", False

    def title(self, w):
        variant = w.rng.below(6)
        if variant == 0:
            text = f"Comment {self.np(w)[0]} {w.verb()} {self.np(w)[0]}"
        elif variant == 1:
            text = f"{w.small()} conseils pour {self.np(w)[0]}"
        elif variant == 2:
            text = f"Pourquoi {self.np(w)[0]} {w.verb()} {self.np(w)[0]}"
        elif variant == 3:
            text = f"Guide pratique\xa0: {self.np(w)[0]}"
        elif variant == 4:
            text = f"{self.np(w)[0]} et {self.np(w)[0]}"
        else:
            text = f"{self.np(w)[0]}\xa0: ce qu'il faut savoir en {w.year()}"
        return capitalize(self.polish(text))

    def heading(self, w):
        variant = w.rng.below(3)
        if variant == 0:
            return capitalize(self.polish(self.np(w)[0]))
        if variant == 1:
            return capitalize(self.polish(f"{self.np(w)[0]} et {self.np(w)[0]}"))
        return capitalize(self.polish(f"pourquoi {self.np(w)[0]} {w.verb()} {self.np(w)[0]}")) + "\xa0?"


class Spanish(Romance):
    """Spanish: del/al contractions, inverted question marks."""

    code = "es"
    determiners = {"m": ("el", "el", "el", "un", "un", "este", "cada", "nuestro"),
                   "f": ("la", "la", "la", "una", "una", "esta", "cada", "nuestra")}
    copula = "es"
    relative_also = ("que", "también")
    and_word = "y"
    rules = ES_RULES

    def t_year(self, w):
        year = w.year()
        lead = w.rng.choice((f"En {year}", f"Desde {year}", f"En {self.months[w.rng.below(12)]} de {year}"))
        return f"{lead}, {self.clause(w)}", False

    def t_question(self, w):
        return f"¿{w.rng.choice(('Por qué', 'Cómo', 'Cuándo', 'Dónde'))} {self.clause(w)}", True

    def t_list(self, w):
        items = [self.np(w)[0] for _ in range(3)]
        return f"{self.clause(w)}: {items[0]}, {items[1]} y {items[2]}", False

    def title(self, w):
        variant = w.rng.below(6)
        if variant == 0:
            text = f"Cómo {self.np(w)[0]} {w.verb()} {self.np(w)[0]}"
        elif variant == 1:
            text = f"{w.small()} consejos para {self.np(w)[0]}"
        elif variant == 2:
            text = f"Por qué {self.np(w)[0]} {w.verb()} {self.np(w)[0]}"
        elif variant == 3:
            text = f"Guía práctica: {self.np(w)[0]}"
        elif variant == 4:
            text = f"{self.np(w)[0]} y {self.np(w)[0]}"
        else:
            text = f"{self.np(w)[0]}: lo que hay que saber en {w.year()}"
        return capitalize(self.polish(text))

    def heading(self, w):
        variant = w.rng.below(3)
        if variant == 0:
            return capitalize(self.polish(self.np(w)[0]))
        if variant == 1:
            return capitalize(self.polish(f"{self.np(w)[0]} y {self.np(w)[0]}"))
        return "¿" + capitalize(self.polish(f"por qué {self.np(w)[0]} {w.verb()} {self.np(w)[0]}")) + "?"


RU_VELAR_SIBILANT = "кгхжшщч"
RU_NOUN_ENDINGS = {
    "f_ия": ("ия", {"gen": "ии", "dat": "ии", "acc": "ию", "ins": "ией", "prep": "ии"}),
    "f_я": ("я", {"gen": "и", "dat": "е", "acc": "ю", "ins": "ей", "prep": "е"}),
    "f_ь": ("ь", {"gen": "и", "dat": "и", "acc": "ь", "ins": "ью", "prep": "и"}),
    "n_ие": ("ие", {"gen": "ия", "dat": "ию", "acc": "ие", "ins": "ием", "prep": "ии"}),
    "n_ье": ("ье", {"gen": "ья", "dat": "ью", "acc": "ье", "ins": "ьем", "prep": "ье"}),
    "n_о": ("о", {"gen": "а", "dat": "у", "acc": "о", "ins": "ом", "prep": "е"}),
    "m_ий": ("ий", {"gen": "ия", "dat": "ию", "ins": "ием", "prep": "ии"}),
    "m_й": ("й", {"gen": "я", "dat": "ю", "ins": "ем", "prep": "е"}),
    "m_ь": ("ь", {"gen": "я", "dat": "ю", "ins": "ем", "prep": "е"}),
}


def ru_noun(noun: Noun, case: str) -> str:
    """Decline a singular Russian noun (regular patterns only)."""
    word, gender = noun.word, noun.gender
    if case == "nom":
        return word
    if case == "acc" and gender != "f":
        if not (gender == "m" and noun.animate):
            return word
        case = "gen"
    if gender == "f" and word.endswith("а"):
        stem = word[:-1]
        endings = {"gen": "и" if stem[-1] in RU_VELAR_SIBILANT else "ы", "dat": "е", "acc": "у",
                   "ins": "ей" if stem[-1] in "жшщчц" else "ой", "prep": "е"}
        return stem + endings[case]
    for key in (f"{gender}_ия", f"{gender}_ие", f"{gender}_ье", f"{gender}_ий", f"{gender}_я", f"{gender}_й",
                f"{gender}_ь", f"{gender}_о"):
        if key in RU_NOUN_ENDINGS and word.endswith(RU_NOUN_ENDINGS[key][0]):
            suffix, endings = RU_NOUN_ENDINGS[key]
            return word[:-len(suffix)] + endings[case]
    endings = {"gen": "а", "dat": "у", "ins": "ем" if word[-1] in "жшщчц" else "ом", "prep": "е"}
    return word + endings[case]


def ru_adj(adjective: str, gender: str, case: str, animate: bool = False) -> str:
    """Decline a Russian adjective given in the masculine nominative."""
    if case == "acc" and gender != "f":
        case = "gen" if gender == "m" and animate else "nom"
    stem = adjective[:-2]
    if adjective.endswith("ний"):
        forms = {"m": {"nom": "ий", "gen": "его", "dat": "ему", "ins": "им", "prep": "ем"},
                 "n": {"nom": "ее", "gen": "его", "dat": "ему", "ins": "им", "prep": "ем"},
                 "f": {"nom": "яя", "gen": "ей", "dat": "ей", "acc": "юю", "ins": "ей", "prep": "ей"}}
    else:
        i_or_y = "и" if stem[-1] in RU_VELAR_SIBILANT else "ы"
        forms = {"m": {"nom": adjective[-2:], "gen": "ого", "dat": "ому", "ins": i_or_y + "м", "prep": "ом"},
                 "n": {"nom": "ое", "gen": "ого", "dat": "ому", "ins": i_or_y + "м", "prep": "ом"},
                 "f": {"nom": "ая", "gen": "ой", "dat": "ой", "acc": "ую", "ins": "ой", "prep": "ой"}}
    return stem + forms[gender][case]


RU_DETERMINERS = ("этот", "каждый", "наш")
RU_DETERMINER_FORMS = {
    "этот": {"m": ("этот", "этого"), "f": ("эта", "эту"), "n": ("это", "это")},
    "каждый": {"m": ("каждый", "каждого"), "f": ("каждая", "каждую"), "n": ("каждое", "каждое")},
    "наш": {"m": ("наш", "нашего"), "f": ("наша", "нашу"), "n": ("наше", "наше")},
}


class Russian(Grammar):
    """Russian: six-case declension of nouns and adjectives, free word order kept SVO."""

    code = "ru"

    def np(self, w: Writer, case: str) -> tuple[str, Noun]:
        """Noun phrase in the given case."""
        noun, rng = w.noun(), w.rng
        words = []
        if case in ("nom", "acc") and rng.chance(0.15):
            nominative, accusative = RU_DETERMINER_FORMS[rng.choice(RU_DETERMINERS)][noun.gender]
            if case == "nom" or noun.gender == "f" or (noun.gender == "m" and noun.animate):
                words.append(nominative if case == "nom" else accusative)
            else:
                words.append(nominative)
        roll = rng.random()
        count = 0 if roll < 0.5 else 1 if roll < 0.9 else 2
        adjectives = [ru_adj(w.adjective(), noun.gender, case, noun.animate) for _ in range(count)]
        if len(adjectives) == 2 and adjectives[0] == adjectives[1]:
            adjectives.pop()
        if adjectives and rng.chance(0.1):
            adjectives[0] = f"{w.intensifier()} {adjectives[0]}"
        return " ".join(words + adjectives + [ru_noun(noun, case)]), noun

    def subject(self, w: Writer) -> str:
        """Subject noun phrase or person."""
        return w.name() if w.rng.chance(0.06) else self.np(w, "nom")[0]

    def clause(self, w: Writer, adverb: bool = False) -> str:
        """Subject, optional adverb, verb, object."""
        middle = f"{w.adverb()} " if adverb else ""
        return f"{self.subject(w)} {middle}{w.verb()} {self.np(w, 'acc')[0]}"

    def pp(self, w: Writer) -> str:
        """Prepositional phrase in the governed case."""
        prep, _, case = w.prep().partition(":")
        phrase = self.np(w, case)[0]
        if prep == "о" and phrase[0] in "аоуэиы":
            prep = "об"
        return f"{prep} {phrase}"

    def t_svo(self, w):
        return self.clause(w), False

    def t_svo_pp(self, w):
        return f"{self.clause(w)} {self.pp(w)}", False

    def t_opener(self, w):
        return f"{w.opener()} {self.clause(w)}", False

    def t_sub_after(self, w):
        return f"{self.clause(w)}, {w.conj_after()} {self.clause(w)}", False

    def t_sub_before(self, w):
        return f"{w.conj_before()} {self.clause(w)}, {self.clause(w)}", False

    def t_adverb(self, w):
        tail = f" {self.pp(w)}" if w.rng.chance(0.4) else ""
        return self.clause(w, adverb=True) + tail, False

    def t_copula(self, w):
        subject, noun = self.np(w, "nom")
        predicate = ru_adj(w.adjective(), noun.gender, "nom")
        if w.rng.chance(0.5):
            predicate = f"{w.intensifier()} {predicate}"
        if w.rng.chance(0.3):
            predicate += f" и {ru_adj(w.adjective(), noun.gender, 'nom')}"
        return f"{subject} {predicate}", False

    def t_year(self, w):
        year = w.year()
        lead = w.rng.choice((f"В {year} году", f"С {year} года", f"До {year} года", f"К {year} году"))
        if w.rng.chance(0.5):
            return f"{lead} {self.clause(w)}", False
        return f"{lead} {self.subject(w)} {w.verb()} {w.quantity()}", False

    def t_question(self, w):
        return f"{w.rng.choice(('Почему', 'Как', 'Когда', 'Зачем'))} {self.clause(w)}", True

    def t_relative(self, w):
        subject, noun = self.np(w, "nom")
        pronoun = {"m": "который", "f": "которая", "n": "которое"}[noun.gender]
        return f"{subject}, {pronoun} {w.verb()} {self.np(w, 'acc')[0]}, также {w.verb()} {self.np(w, 'acc')[0]}", False

    def t_compound(self, w):
        return f"{self.clause(w)}, {w.coord()} {self.clause(w)}", False

    def t_list(self, w):
        items = [self.np(w, "acc")[0] for _ in range(3)]
        return f"{self.clause(w)}: {items[0]}, {items[1]} и {items[2]}", False

    def quote(self, w):
        return f"«{self.sentence(w)}»", f"— {w.name()}"

    def title(self, w):
        variant = w.rng.below(6)
        if variant == 0:
            text = f"Как {self.np(w, 'nom')[0]} {w.verb()} {self.np(w, 'acc')[0]}"
        elif variant == 1:
            text = f"{w.rng.between(5, 12)} советов: {self.np(w, 'nom')[0]}"
        elif variant == 2:
            text = f"Почему {self.np(w, 'nom')[0]} {w.verb()} {self.np(w, 'acc')[0]}"
        elif variant == 3:
            text = f"{self.np(w, 'nom')[0]}: что нужно знать"
        elif variant == 4:
            text = f"{self.np(w, 'nom')[0]} и {self.np(w, 'nom')[0]}"
        else:
            text = f"{self.np(w, 'nom')[0]} в {w.year()} году"
        return capitalize(text)

    def heading(self, w):
        variant = w.rng.below(3)
        if variant == 0:
            return capitalize(self.np(w, "nom")[0])
        if variant == 1:
            return capitalize(f"{self.np(w, 'nom')[0]} и {self.np(w, 'nom')[0]}")
        return capitalize(f"почему {self.np(w, 'nom')[0]} {w.verb()} {self.np(w, 'acc')[0]}") + "?"

    def list_item(self, w):
        item = capitalize(self.np(w, "nom")[0])
        return f"{item} ({w.quantity()})" if w.rng.chance(0.3) else item


ZH_DETERMINERS = ("", "", "", "", "", "这个", "这种", "每个", "我们的", "许多", "一些", "该", "一个", "这些")


class Chinese(Grammar):
    """Chinese: no spaces, 的-modifiers, paired connectives and full-width punctuation."""

    code = "zh"
    space = ""
    full_stop = "。"
    question_mark = "？"

    def np(self, w: Writer, determiner: bool = True) -> str:
        """Noun phrase with optional determiner and adjective."""
        rng = w.rng
        det = rng.choice(ZH_DETERMINERS) if determiner else ""
        modifier = ""
        if rng.chance(0.35):
            adjective = w.adjective()
            if rng.chance(0.15):
                modifier = f"{w.intensifier()}{adjective}的"
            else:
                modifier = adjective if len(adjective) == 1 else adjective + "的"
        return det + modifier + w.noun().word

    def subject(self, w: Writer) -> str:
        """Subject noun phrase or person."""
        return w.name() if w.rng.chance(0.06) else self.np(w)

    def clause(self, w: Writer, adverb: bool = False) -> str:
        """Subject, optional adverb, verb (sometimes with 了), object."""
        middle = w.adverb() if adverb else ""
        aspect = "了" if w.rng.chance(0.15) else ""
        return f"{self.subject(w)}{middle}{w.verb()}{aspect}{self.np(w)}"

    def pp(self, w: Writer) -> str:
        """Framed prepositional phrase such as 在…中."""
        before, _, after = w.prep().partition("…")
        return f"{before}{self.np(w)}{after}"

    def t_svo(self, w):
        return self.clause(w), False

    def t_svo_pp(self, w):
        return f"{self.pp(w)}，{self.clause(w)}", False

    def t_opener(self, w):
        return w.opener() + self.clause(w), False

    def t_sub_after(self, w):
        return f"{self.clause(w)}，{w.conj_after()}{self.clause(w)}", False

    def t_sub_before(self, w):
        first, _, second = w.conj_before().partition("…")
        if second in ("就", "仍然"):
            return f"{first}{self.clause(w)}，{self.subject(w)}{second}{w.verb()}{self.np(w)}", False
        return f"{first}{self.clause(w)}，{second}{self.clause(w)}", False

    def t_adverb(self, w):
        return self.clause(w, adverb=True), False

    def t_copula(self, w):
        return f"{self.np(w)}{w.intensifier()}{w.adjective()}", False

    def t_year(self, w):
        year = w.year()
        if w.rng.chance(0.5):
            return f"在{year}年{w.rng.between(1, 12)}月，{self.clause(w)}", False
        return f"{year}年，{self.subject(w)}{w.verb()}了{w.quantity()}的{w.noun().word}", False

    def t_question(self, w):
        return f"{self.subject(w)}{w.rng.choice(('为什么', '是否', '如何', '何时'))}{w.verb()}{self.np(w)}", True

    def t_relative(self, w):
        return f"{w.verb()}{self.np(w, False)}的{w.noun().word}也{w.verb()}{self.np(w)}", False

    def t_compound(self, w):
        return f"{self.clause(w)}，{w.coord()}{self.clause(w)}", False

    def t_list(self, w):
        items = [self.np(w, False) for _ in range(3)]
        return f"{self.subject(w)}{w.verb()}{items[0]}、{items[1]}和{items[2]}", False

    def quote(self, w):
        return f"“{self.sentence(w)}”", f"——{w.name()}"

    def title(self, w):
        variant = w.rng.below(6)
        if variant == 0:
            return f"如何{w.verb()}{self.np(w, False)}"
        if variant == 1:
            return f"{self.np(w, False)}的{w.small()}个{w.rng.choice(('要点', '技巧', '误区', '细节'))}"
        if variant == 2:
            return f"为什么{self.np(w)}{w.verb()}{self.np(w)}"
        if variant == 3:
            return f"关于{self.np(w, False)}的{w.rng.choice(('几点思考', '一些经验', '若干问题'))}"
        if variant == 4:
            return f"{self.np(w, False)}与{self.np(w, False)}"
        return f"{self.np(w, False)}：{w.rng.choice(('你需要知道的事', '从入门到实践', '一份实用指南'))}"

    def heading(self, w):
        variant = w.rng.below(4)
        if variant == 0:
            return self.np(w, False)
        if variant == 1:
            return f"{w.verb()}{self.np(w, False)}"
        if variant == 2:
            return f"{self.np(w, False)}与{self.np(w, False)}"
        return f"{self.np(w)}为什么{w.verb()}{self.np(w)}？"

    def list_item(self, w):
        item = self.np(w, False) if w.rng.chance(0.6) else f"{w.verb()}{self.np(w, False)}"
        return f"{item}（{w.quantity()}）" if w.rng.chance(0.3) else item


GRAMMARS = {grammar.code: grammar for grammar in (English(), German(), French(), Spanish(), Russian(), Chinese())}


# --------------------------------------------------------------------------- documents

def count_units(text: str, lang: str | None) -> int:
    """Count edit units: non-space characters for Chinese, whitespace-separated words otherwise."""
    if lang == "zh":
        return sum(1 for char in text if not char.isspace())
    return len(text.split())


def block_text(kind: str, value) -> str:
    """Plain-text rendering of one content block."""
    if kind in ("p", "h2"):
        return value
    if kind in ("ul", "ol", "lines"):
        return "\n".join(value)
    if kind == "quote":
        text, attribution, separator = value
        return f"{text}{separator}{attribution}"
    if kind == "code":
        return value[1]
    if kind == "table":
        return "\n".join("\t".join(row) for row in value)
    if kind == "links":
        return "\n".join(label for label, _ in value)
    if kind == "pipe":
        return " | ".join(label for label, _ in value)
    raise ValueError(kind)


@dataclass
class Content:
    """A page's main content: a title and typed blocks (p, h2, ul, ol, quote, code, table, links, pipe, lines)."""

    lang: str
    title: str
    blocks: list
    byline: str = ""
    topic: str = ""
    published: tuple[int, int, int] | None = None

    def main_text(self, separator: str = "\n\n") -> str:
        """Title, byline and blocks as plain text."""
        parts = [self.title] + ([self.byline] if self.byline else [])
        return separator.join(parts + [block_text(kind, value) for kind, value in self.blocks])


def code_snippet(rng: Rng) -> tuple[str, str]:
    """A short code listing in one of five languages, assembled from random identifiers and variable structure."""
    noun, other, field_name, verb = rng.choice(CODE_NOUNS), rng.choice(CODE_NOUNS), rng.choice(CODE_NOUNS), rng.choice(CODE_VERBS)
    nouns, others = en_suffix_s(noun), en_suffix_s(other)
    number, limit = rng.between(2, 64), rng.between(100, 5000)
    variant = rng.below(5)
    if variant == 0:
        keyword = rng.choice(("limit", "max_items", "cap", "size", "budget"))
        bucket = rng.choice(("selected", "result", "out", "keep", "batch"))
        item = rng.choice((noun, "x", "entry", "row", "obj"))
        condition = rng.choice((f"len({item}.{others}) > {number}", f"{item}.{field_name} >= {number}",
                                f"{item}.{field_name} is not None", f"not {item}.{other}"))
        lines = [f"def {verb}_{nouns}({others}, {keyword}={limit}):",
                 f'    """{capitalize(verb)} {nouns} from {others}; stop after {keyword} items."""',
                 f"    {bucket} = []", f"    for {item} in {others}:", f"        if {condition}:",
                 f"            {bucket}.append({item})"]
        if rng.chance(0.5):
            lines += [f"        if len({bucket}) == {keyword}:", "            break", f"    return {bucket}"]
        else:
            lines.append(f"    return {bucket}[:{keyword}]")
        return "python", "\n".join(lines)
    if variant == 1:
        package = f"{noun}-{rng.choice(CODE_VERBS)}er"
        flags = rng.sample([f"--{others} {number}", f"--timeout {limit}", "--verbose", f"--workers {rng.between(2, 16)}",
                            f"--out ./{verb}d", "--dry-run"], rng.between(1, 3))
        return "bash", "\n".join([f"$ pip install {package}=={rng.below(4)}.{rng.below(20)}.{rng.below(10)}",
                                   f"$ {package} {verb} {' '.join(flags)} ./data/{nouns}",
                                   f"{limit * rng.between(2, 9)} {nouns}, {rng.below(50)} warnings, "
                                   f"{rng.between(1, 59)}.{rng.below(10)}s"])
    if variant == 2:
        handle = rng.choice((nouns, "res", "reply", f"{noun}Res"))
        lines = [f"const {handle} = await fetch(`/api/v{rng.between(1, 3)}/{nouns}?limit={limit}`);",
                 f"if (!{handle}.ok && {handle}.status {rng.choice(('<', '>=', '!=='))} {rng.choice((400, 500, 503))}) {{",
                 f"  throw new Error(`{verb} {nouns}: ${{{handle}.status}}`);", "}"]
        if rng.chance(0.5):
            lines.append(f"const by{capitalize(other)} = new Map((await {handle}.json()).map((x) => [x.{field_name}, x]));")
        else:
            lines.append(f"const {others} = (await {handle}.json()).filter((x) => x.{field_name} > {number});")
        return "javascript", "\n".join(lines)
    if variant == 3:
        aggregate, alias = rng.choice(("COUNT(*)", "SUM(size)", "MAX(updated_at)", "AVG(score)")), rng.choice(("total", "n", "agg", "hits"))
        lines = [f"SELECT {other}_id, {aggregate} AS {alias}", f"FROM {nouns}"]
        if rng.chance(0.7):
            lines.append(f"WHERE {field_name}_count > {number}")
        lines += [f"GROUP BY {other}_id", f"ORDER BY {alias} {rng.choice(('DESC', 'ASC'))}"]
        if rng.chance(0.6):
            lines.append(f"LIMIT {limit}")
        return "sql", "\n".join(lines) + ";"
    keys = rng.sample([f"{others}: {number}", f"{verb}: {rng.choice(('true', 'false'))}", f"path: /var/lib/{noun}/{others}",
                       f"max_{en_suffix_s(field_name)}: {limit}", f"retry: {rng.between(1, 9)}",
                       f"mode: {rng.choice(('fast', 'safe', 'batch'))}"], rng.between(2, 5))
    return "yaml", "\n".join([f"{noun}:"] + [f"  {key}" for key in keys])


def data_table(w: Writer) -> list[list[str]]:
    """A small table of yearly figures with a localised header row."""
    header = w.grammar.ui["table"].split("|")
    rows, year = [header], w.year()
    for offset in range(w.rng.between(3, 6)):
        rows.append([str(year + offset), capitalize(w.noun().word), w.quantity(), w.change()])
    return rows


def target_units(lang: str, rng: Rng) -> int:
    """Article length in words (characters for Chinese), skewed towards a few hundred to two thousand."""
    u, v = rng.random(), rng.random()
    words = 400 + int(1400 * u) + int(2600 * v * v)
    return words * 8 // 5 if lang == "zh" else words


def build_article(lang: str, topic: str, rng: Rng) -> Content:
    """Generate a full article: title, byline, intro, then sections with paragraphs and occasional extras."""
    grammar = GRAMMARS[lang]
    w = Writer(grammar, topic, rng)
    target = target_units(lang, rng)
    title = grammar.title(w)
    published = (rng.between(2012, 2023), rng.between(1, 12), rng.between(1, 28))
    byline = grammar.byline(w, *published)
    blocks, units = [], 0

    def add(kind: str, value) -> None:
        nonlocal units
        blocks.append((kind, value))
        units += count_units(block_text(kind, value), lang)

    for _ in range(rng.between(1, 2)):
        add("p", grammar.paragraph(w, rng.between(2, 6)))
    while units < target:
        add("h2", grammar.heading(w))
        for _ in range(rng.between(1, 4)):
            add("p", grammar.paragraph(w, rng.between(2, 7)))
        roll = rng.random()
        if topic == "software" and rng.chance(0.35):
            add("code", code_snippet(rng))
        elif roll < 0.22:
            add(rng.choice(("ul", "ol")), [grammar.list_item(w) for _ in range(rng.between(3, 6))])
        elif roll < 0.32:
            text, attribution = grammar.quote(w)
            add("quote", (text, attribution, grammar.space or ""))
        elif roll < 0.38:
            add("table", data_table(w))
    return Content(lang, title, blocks, byline, topic, published)


def near_duplicate(article: Content, rate: float, rng: Rng) -> tuple[Content, float]:
    """Copy an article with single-unit substitutions, deletions and insertions in its paragraphs; return it and the realised edit rate.

    Replacement and inserted units come from the article's own vocabulary, as in a light rewrite.
    """
    lang = article.lang
    total = count_units(article.main_text(), lang)
    edits = min(max(int(rate * total + 0.5), (total + 99) // 100), total // 10)
    if lang == "zh":
        units = {i: list(value) for i, (kind, value) in enumerate(article.blocks) if kind == "p"}
        editable = {i: [j for j, char in enumerate(chars) if HAN_RE.match(char)] for i, chars in units.items()}
    else:
        units = {i: value.split(" ") for i, (kind, value) in enumerate(article.blocks) if kind == "p"}
        editable = {i: [j for j, token in enumerate(tokens) if token.isalpha()] for i, tokens in units.items()}
    replacements = sorted({units[i][j] for i in editable for j in editable[i]})
    candidates = rng.shuffled([(i, j) for i in sorted(editable) for j in editable[i]])
    chosen: set = set()
    for i, j in candidates:
        if len(chosen) == edits:
            break
        if not any((i, j + d) in chosen for d in (-2, -1, 0, 1, 2)):
            chosen.add((i, j))
    for i, j in sorted(chosen, reverse=True):
        tokens, roll = units[i], rng.random()
        if roll < 0.4:
            replacement = rng.choice(replacements)
            while replacement == tokens[j]:
                replacement = rng.choice(replacements)
            tokens[j] = replacement
        elif roll < 0.7:
            del tokens[j]
        else:
            tokens.insert(j, rng.choice(replacements))
    joiner = "" if lang == "zh" else " "
    blocks = [(kind, joiner.join(units[i]) if i in units else value) for i, (kind, value) in enumerate(article.blocks)]
    return Content(lang, article.title, blocks, article.byline, article.topic, article.published), len(chosen) / total


def month_label(lang: str, year: int, month: int) -> str:
    """Archive label for a month."""
    name = GRAMMARS[lang].months[month - 1]
    return {"en": f"{name} {year}", "de": f"{name} {year}", "fr": f"{name} {year}",
            "es": f"{name} de {year}", "ru": f"{month:02d}.{year}", "zh": f"{year}年{month}月"}[lang]


def build_nav(lang: str, rng: Rng, titles: list[tuple[str, str]]) -> Content:
    """A navigation-only page: category index, archive, tag cloud or sitemap."""
    ui, topics = UI[lang], TOPIC_NAMES[lang].split("|")
    lexicon = GRAMMARS[lang].lex
    home = ("pipe", [(ui["home"], "/"), (ui["about"], "/about/"), (ui["contact"], "/contact/")])
    categories = ("links", [(f"{name} ({rng.between(3, 240)})", f"/category/{slugify(TOPICS[i], 'en')}/")
                            for i, name in enumerate(topics)])
    variant = rng.below(4)
    if variant == 0:
        title, blocks = ui["categories"], [categories]
    elif variant == 1:
        months = [(2024 - k // 12, 12 - k % 12) for k in range(rng.between(10, 30))]
        title = ui["archive"]
        blocks = [("links", [(f"{month_label(lang, y, m)} ({rng.between(1, 40)})", f"/{y}/{m:02d}/") for y, m in months])]
    elif variant == 2:
        words = rng.sample([noun.word for nouns in lexicon.topics.values() for noun in nouns], rng.between(20, 40))
        title, blocks = ui["tags"], [("links", [(word, f"/tag/{slugify(word, lang) or rng.below(9999)}/") for word in words])]
    else:
        picked = rng.sample(titles, min(len(titles), rng.between(4, 10)))
        title, blocks = ui["sitemap"], [categories, ("links", [(text, url) for text, url in picked])]
    pages = [(str(n), f"?page={n}") for n in range(1, rng.between(3, 8))] + [(ui["next"], "?page=2")]
    return Content(lang, title, [home] + blocks + [("pipe", pages)])


def build_spam(lang: str, rng: Rng) -> Content:
    """A keyword-stuffed page: a handful of commercial phrases repeated in random order."""
    phrases = Pool(rng.sample(SPAM_WORDS[lang].split("|"), 5))
    fillers = SPAM_FILLER.split("|")
    space = "" if lang == "zh" else " "
    title = " - ".join(phrases.items[:3]).upper() if lang != "zh" else "！".join(phrases.items[:3])
    blocks = []
    for _ in range(rng.between(3, 9)):
        words = [rng.choice(fillers) if rng.chance(0.08) else phrases.draw(rng) for _ in range(rng.between(25, 90))]
        blocks.append(("p", space.join(words)))
    blocks.append(("links", [(phrases.draw(rng), f"/go/{rng.between(100, 999)}") for _ in range(rng.between(6, 14))]))
    return Content(lang, title, blocks)


def build_repeated(lang: str, rng: Rng) -> Content:
    """A page whose body is one line repeated many times."""
    if rng.chance(0.5):
        line = rng.choice(REPEATED_LINES[lang].split("|"))
    else:
        grammar = GRAMMARS[lang]
        line = grammar.sentence(Writer(grammar, rng.choice(TOPICS), rng))
    return Content(lang, line, [("lines", [line] * rng.between(40, 400))])


def build_short(lang: str, rng: Rng) -> Content:
    """A page with a sentence or two of content."""
    grammar = GRAMMARS[lang]
    w = Writer(grammar, rng.choice(TOPICS), rng)
    if rng.chance(0.4):
        text = rng.choice(SHORT_STUBS[lang].split("|"))
    else:
        text = grammar.paragraph(w, rng.between(1, 2))
    return Content(lang, grammar.heading(w), [("p", text)])


def build_not_found(lang: str) -> Content:
    """The body of a 404 page."""
    ui = UI[lang]
    return Content(lang, ui["not_found"], [("p", ui["not_found_body"]),
                                           ("pipe", [(ui["home"], "/"), (ui["search"], "/search/"),
                                                     (ui["sitemap"], "/sitemap/")])])


RU_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                       "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya".split(),
                       strict=True))


def slugify(text: str, lang: str) -> str:
    """URL slug: transliterated, accent-free, lower-case words joined by '-', at most 60 characters."""
    text = text.lower()
    if lang == "ru":
        text = "".join(RU_TRANSLIT.get(char, char).strip("_") for char in text)
    text = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("œ", "oe"))
    slug = re.sub(r"[^a-z0-9]+", "-", "".join(char for char in text if not unicodedata.combining(char))).strip("-")
    while len(slug) > 60 and "-" in slug:
        slug = slug.rsplit("-", 1)[0]
    return slug[:60]


# --------------------------------------------------------------------------- sites and HTML

SITE_SPECS = (
    ("en", "brackenfold-journal.com", "The Brackenfold Journal", "blog", "en-US"),
    ("en", "tidewell-gazette.net", "Tidewell Gazette", "news", "en-GB"),
    ("en", "quillstack-notes.org", "Quillstack Notes", "docs", "en"),
    ("de", "gartenkiste-blog.de", "Die Gartenkiste", "blog", "de-DE"),
    ("de", "rheinufer-anzeiger.de", "Rheinufer-Anzeiger", "news", "de"),
    ("fr", "carnet-du-verger.fr", "Le Carnet du Verger", "blog", "fr-FR"),
    ("fr", "echo-des-vallons.fr", "L'Écho des Vallons", "news", "fr"),
    ("es", "cuaderno-del-huerto.es", "El Cuaderno del Huerto", "blog", "es-ES"),
    ("es", "diario-la-ribera.es", "Diario La Ribera", "docs", "es"),
    ("ru", "zametki-ogorodnika.ru", "Заметки огородника", "blog", "ru-RU"),
    ("ru", "vestnik-pribrezhny.ru", "Прибрежный вестник", "news", "ru"),
    ("zh", "lvye-biji.cn", "绿野笔记", "news", "zh-CN"),
    ("zh", "qingshan-wenku.com.cn", "青山文库", "docs", "zh-Hans"),
)
SPAM_SITE_SPECS = (("en", "best-cheap-deals-4u.biz"), ("en", "mega-bonus-casino.top"),
                   ("en", "pills-discount-online.xyz"), ("de", "super-angebote-jetzt.info"),
                   ("fr", "bonnes-affaires-promo.xyz"), ("es", "ofertas-baratas-ya.top"),
                   ("ru", "skidki-kupit-deshevo.ru"), ("zh", "tejia-youhui.top"))
PALETTE = ("#2f6f4e", "#8a3b12", "#1d4e89", "#6b2d5c", "#b5651d", "#0f766e", "#7c2d12", "#334155", "#9d174d",
           "#4d7c0f", "#1e3a8a", "#854d0e")
FONTS = ("Georgia, 'Times New Roman', serif", "'Helvetica Neue', Arial, sans-serif",
         "system-ui, -apple-system, 'Segoe UI', sans-serif", "'Source Serif Pro', Georgia, serif",
         "Verdana, Geneva, sans-serif")
SERVERS = ("nginx", "nginx/1.18.0 (Ubuntu)", "Apache/2.4.57 (Debian)", "Apache", "cloudflare", "LiteSpeed",
           "openresty", "Microsoft-IIS/10.0")
POWERED_BY = ("", "", "PHP/8.1.2", "PHP/7.4.33", "Express", "ASP.NET")
HTML_CONTENT_TYPES = ("text/html; charset=UTF-8", "text/html; charset=utf-8", "text/html;charset=UTF-8")
URL_VARIANTS = ("?utm_source=newsletter&utm_medium=email", "?amp=1", "?print=true", "?ref=homepage",
                "?output=amp", "?share=facebook")
SHARE_TARGETS = (("facebook", "Facebook"), ("x", "X"), ("email", "E-mail"))
NAMED_ENTITIES = {"\xa0": "&nbsp;", "—": "&mdash;", "–": "&ndash;", "©": "&copy;", "é": "&eacute;",
                  "«": "&laquo;", "»": "&raquo;", "·": "&middot;", "…": "&hellip;"}
NUMERIC_ENTITIES = {"\xa0": "&#160;", "—": "&#8212;", "–": "&#8211;", "©": "&#169;", "·": "&#183;"}


@dataclass(frozen=True)
class Site:
    """A web site: language, page template (blog, news, docs or spam) and HTTP/HTML habits."""

    lang: str
    domain: str
    name: str
    skeleton: str
    html_lang: str
    prefix: str
    color: str
    font: str
    server: str
    powered_by: str
    ip: str
    entities: str
    self_closing: bool
    content_type: str
    since: int
    cookie: bool
    title_sep: str


def build_sites(rng: Rng) -> tuple[list[Site], list[Site]]:
    """Create the content sites and the spam sites with randomly drawn house styles."""
    def site(lang: str, domain: str, name: str, skeleton: str, html_lang: str) -> Site:
        parts = re.split(r"[-.]", domain)
        return Site(lang, domain, name, skeleton, html_lang, parts[0][:2] + parts[1][:1], rng.choice(PALETTE),
                    rng.choice(FONTS), rng.choice(SERVERS), rng.choice(POWERED_BY),
                    f"{rng.choice(('192.0.2', '198.51.100', '203.0.113'))}.{rng.between(2, 254)}",
                    rng.choice(("raw", "raw", "named", "numeric")), rng.chance(0.4), rng.choice(HTML_CONTENT_TYPES),
                    rng.between(2003, 2016), skeleton != "docs" or rng.chance(0.5),
                    rng.choice((" | ", " - ", " — ", " · ")))
    sites = [site(*spec) for spec in SITE_SPECS]
    spam = [site(lang, domain, domain.split(".")[0].replace("-", " ").title(), "spam", lang)
            for lang, domain in SPAM_SITE_SPECS]
    return sites, spam


class Html:
    """Escaping and void-element conventions for one page (the site's habits, or strict XHTML)."""

    def __init__(self, site: Site, xhtml: bool = False) -> None:
        self.xhtml = xhtml
        style = "numeric" if xhtml else site.entities
        table = {"named": NAMED_ENTITIES, "numeric": NUMERIC_ENTITIES}.get(style, {})
        self._table = {ord(char): entity for char, entity in table.items()}
        self._slash = " /" if xhtml or site.self_closing else ""

    def text(self, text: str) -> str:
        """Escape character data, spelling some characters as entities."""
        return html.escape(text, quote=False).translate(self._table)

    def void(self, tag: str, attrs: list[tuple[str, str]]) -> str:
        """A void element such as meta, link, img or input."""
        rendered = "".join(f' {name}="{html.escape(value)}"' for name, value in attrs)
        return f"<{tag}{rendered}{self._slash}>"

    def script(self, code: str) -> str:
        """An inline script element (CDATA-wrapped in XHTML)."""
        if self.xhtml:
            return f'<script type="text/javascript">//<![CDATA[\n{code}\n//]]></script>'
        return f"<script>\n{code}\n</script>"

    def style(self, css: str) -> str:
        """An inline style element."""
        return f'<style type="text/css">\n{css}\n</style>' if self.xhtml else f"<style>\n{css}\n</style>"


def site_css(site: Site) -> str:
    """The site's inline stylesheet."""
    p = site.prefix
    rules = [
        f":root {{ --{p}-accent: {site.color}; --{p}-text: #1f2328; }}",
        f"body {{ margin: 0; font-family: {site.font}; color: var(--{p}-text); line-height: 1.6; }}",
        f".{p}-header {{ display: flex; align-items: center; justify-content: space-between; padding: 12px 24px; }}",
        f".{p}-nav ul {{ list-style: none; display: flex; flex-wrap: wrap; gap: 18px; margin: 0; padding: 0; }}",
        f".{p}-nav a, .{p}-links a {{ color: var(--{p}-accent); text-decoration: none; }}",
        f".{p}-main {{ max-width: {640 + 16 * len(site.domain)}px; margin: 0 auto; padding: 24px; }}",
        f".{p}-article h1 {{ font-size: 2.2rem; line-height: 1.2; }}",
        f".{p}-article pre {{ background: #f6f8fa; padding: 12px; overflow: auto; }}",
        f".{p}-article blockquote {{ border-left: 4px solid var(--{p}-accent); margin-left: 0; padding-left: 16px; }}",
        f".{p}-cookie {{ position: fixed; bottom: 0; left: 0; right: 0; background: #222; color: #fff; padding: 12px; }}",
        f".{p}-footer {{ font-size: .85rem; color: #666; border-top: 1px solid #e5e5e5; padding: 24px; }}",
        f"@media (max-width: 640px) {{ .{p}-nav ul {{ display: none; }} .{p}-main {{ padding: 12px; }} }}",
    ]
    return "\n".join(rules)


def site_js(site: Site) -> str:
    """The site's inline script: consent banner, menu toggle and a page-view beacon."""
    p = site.prefix
    return f"""(function () {{
  var key = '{p}_consent';
  var banner = document.getElementById('{p}-cookie');
  window.{p}Metrics = window.{p}Metrics || [];
  window.{p}Metrics.push({{ page: location.pathname, started: Date.now(), site: '{site.domain}' }});
  if (banner && document.cookie.indexOf(key + '=') !== -1) {{
    banner.parentNode.removeChild(banner);
  }} else if (banner) {{
    banner.addEventListener('click', function (event) {{
      if (event.target.tagName !== 'BUTTON') {{ return; }}
      document.cookie = key + '=' + (event.target.value === 'yes' ? 1 : 0) + '; max-age=31536000; path=/';
      banner.style.display = 'none';
    }});
  }}
  var toggle = document.querySelector('.{p}-menu-toggle');
  if (toggle && window.innerWidth < 640) {{
    toggle.onclick = function () {{ document.body.classList.toggle('{p}-menu-open'); }};
  }}
}})();"""


def inline_markup(text: str, lang: str, rng: Rng, h: Html) -> str:
    """Escape a paragraph, wrapping a few words in em, strong or a link now and then."""
    if len(text) < 40 or not rng.chance(0.35):
        return h.text(text)
    if lang == "zh":
        start = rng.below(len(text) - 8)
        end = start + rng.between(2, 5)
    else:
        spaces = [i for i, char in enumerate(text) if char == " "]
        if len(spaces) < 4:
            return h.text(text)
        k = rng.below(len(spaces) - 2)
        start, end = spaces[k] + 1, spaces[k + rng.between(1, 2)]
    tag = rng.choice(("em", "strong", "a"))
    opening = f'<a href="/tag/{slugify(text[start:end], lang) or rng.below(9999)}/">' if tag == "a" else f"<{tag}>"
    return f"{h.text(text[:start])}{opening}{h.text(text[start:end])}</{tag}>{h.text(text[end:])}"


def blocks_html(content: Content, h: Html, rng: Rng, prefix: str) -> list[str]:
    """Render content blocks as HTML elements."""
    out = []
    for index, (kind, value) in enumerate(content.blocks):
        if kind == "p":
            out.append(f"<p>{inline_markup(value, content.lang, rng, h)}</p>")
        elif kind == "h2":
            out.append(f'<h2 id="s{index}">{h.text(value)}</h2>')
        elif kind in ("ul", "ol"):
            out.append(f"<{kind}>" + "".join(f"<li>{h.text(item)}</li>" for item in value) + f"</{kind}>")
        elif kind == "quote":
            text, attribution, separator = value
            out.append(f"<blockquote><p>{h.text(text)}{separator}<cite>{h.text(attribution)}</cite></p></blockquote>")
        elif kind == "code":
            out.append(f'<pre><code class="language-{value[0]}">{h.text(value[1])}</code></pre>')
        elif kind == "table":
            header, *rows = value
            out.append("<table>\n<thead><tr>" + "".join(f"<th>{h.text(cell)}</th>" for cell in header)
                       + "</tr></thead>\n<tbody>\n"
                       + "\n".join("<tr>" + "".join(f"<td>{h.text(cell)}</td>" for cell in row) + "</tr>"
                                   for row in rows)
                       + "\n</tbody>\n</table>")
        elif kind == "links":
            out.append(f'<ul class="{prefix}-links">' + "".join(
                f'<li><a href="{html.escape(href)}">{h.text(label)}</a></li>' for label, href in value) + "</ul>")
        elif kind == "pipe":
            out.append(f'<p class="{prefix}-pipe">' + " | ".join(
                f'<a href="{html.escape(href)}">{h.text(label)}</a>' for label, href in value) + "</p>")
        elif kind == "lines":
            out.extend(f"<p>{h.text(line)}</p>" for line in value)
    return out


def main_html(content: Content, kind: str, h: Html, rng: Rng, prefix: str) -> str:
    """The page's main element: an <article> for prose, a <section> for everything else."""
    body = "\n".join(blocks_html(content, h, rng, prefix))
    if content.byline:
        return (f'<article class="{prefix}-article">\n<h1>{h.text(content.title)}</h1>\n'
                f'<p class="{prefix}-byline">{h.text(content.byline)}</p>\n{body}\n</article>')
    return f'<section class="{prefix}-{kind}">\n<h1>{h.text(content.title)}</h1>\n{body}\n</section>'


def links_html(items: list[tuple[str, str]], h: Html, tag: str = "ul") -> str:
    """A list of links."""
    return f"<{tag}>" + "".join(f'<li><a href="{html.escape(href)}">{h.text(label)}</a></li>'
                                for label, href in items) + f"</{tag}>"


@dataclass
class PageParts:
    """Everything a site template needs to lay out one page."""

    title: str
    description: str
    canonical: str
    main: str
    related: list
    headings: list
    topic: int
    date_text: str
    charset: str = "utf-8"
    charset_in: str = "meta"


def copyright_line(site: Site) -> str:
    """The footer copyright notice."""
    return f"© {site.since}–2024 {site.name}. {UI[site.lang]['rights']}"


def render_page(site: Site, parts: PageParts, h: Html) -> str:
    """Lay out a page in the site's template: head with meta/CSS/JS, header and menus, main content, footer."""
    ui, p = UI[site.lang], site.prefix
    topics = TOPIC_NAMES[site.lang].split("|")
    menu = ([(ui["home"], "/")] + [(name, f"/category/{slugify(TOPICS[i], 'en')}/") for i, name in enumerate(topics)]
            + [(ui["about"], "/about/"), (ui["contact"], "/contact/")])
    if h.xhtml:
        out = ['<?xml version="1.0" encoding="utf-8"?>',
               '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
               '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">',
               f'<html xmlns="http://www.w3.org/1999/xhtml" lang="{site.html_lang}" xml:lang="{site.html_lang}">',
               "<head>", h.void("meta", [("http-equiv", "Content-Type"),
                                          ("content", "application/xhtml+xml; charset=utf-8")])]
    else:
        out = ["<!DOCTYPE html>", f'<html lang="{site.html_lang}">', "<head>"]
        if parts.charset_in == "http-equiv":
            out.append(h.void("meta", [("http-equiv", "Content-Type"), ("content", f"text/html; charset={parts.charset}")]))
        else:
            out.append(h.void("meta", [("charset", parts.charset)]))
    out += [h.void("meta", [("name", "viewport"), ("content", "width=device-width, initial-scale=1")]),
            f"<title>{h.text(parts.title)}</title>",
            h.void("meta", [("name", "description"), ("content", parts.description)]),
            h.void("meta", [("property", "og:title"), ("content", parts.title)]),
            h.void("meta", [("property", "og:site_name"), ("content", site.name)]),
            h.void("link", [("rel", "canonical"), ("href", parts.canonical)]),
            h.void("link", [("rel", "stylesheet"), ("href", f"/assets/{p}-main.css?v={site.since % 97}")]),
            h.style(site_css(site)), "</head>", f'<body class="{p}-{site.skeleton}">']
    cookie = (f'<div id="{p}-cookie" class="{p}-cookie"><p>{h.text(ui["cookie"])}</p>'
              f'<button type="button" value="yes">{h.text(ui["accept"])}</button> '
              f'<button type="button" value="no">{h.text(ui["decline"])}</button></div>') if site.cookie else ""
    logo = (f'<a class="{p}-logo" href="/">'
            + h.void("img", [("src", f"/static/{p}-logo.svg"), ("alt", ""), ("width", "32"), ("height", "32")])
            + f" {h.text(site.name)}</a>")
    search = (f'<form class="{p}-search" action="/search/" method="get">'
              + h.void("input", [("type", "search"), ("name", "q"), ("placeholder", ui["search"])]) + "</form>")
    related = links_html(parts.related, h)
    if site.skeleton == "blog":
        out += [cookie, f'<header class="{p}-header">', logo,
                f'<button class="{p}-menu-toggle" type="button">{h.text(ui["menu"])}</button>',
                f'<nav class="{p}-nav">{links_html(menu, h)}</nav>', "</header>",
                f'<main class="{p}-main">', parts.main,
                f'<aside class="{p}-related"><h2>{h.text(ui["related"])}</h2>{related}</aside>', "</main>"]
    elif site.skeleton == "news":
        crumbs = [(ui["home"], "/"), (topics[parts.topic], menu[parts.topic + 1][1])]
        out += [f'<div class="{p}-topbar"><span>{h.text(parts.date_text)}</span> '
                f'<a href="/login/">{h.text(ui["login"])}</a></div>',
                f'<header class="{p}-header">', logo, search, "</header>",
                f'<nav class="{p}-nav">{links_html(menu, h)}</nav>',
                f'<nav class="{p}-breadcrumb">{links_html(crumbs, h, "ol")}</nav>',
                f'<div class="{p}-columns">', f'<main class="{p}-main">', parts.main, "</main>",
                f'<aside class="{p}-sidebar"><h2>{h.text(ui["most_read"])}</h2>{links_html(parts.related, h, "ol")}</aside>',
                "</div>"]
    else:
        toc = [(text, f"#s{index}") for index, text in parts.headings]
        out += [f'<header class="{p}-header">', logo, search, "</header>", f'<div class="{p}-layout">',
                f'<nav class="{p}-sidebar"><h2>{h.text(ui["categories"])}</h2>{links_html(menu[1:-2], h)}</nav>',
                f'<main class="{p}-main">', parts.main,
                f'<aside class="{p}-toc"><h2>{h.text(ui["on_this_page"])}</h2>{links_html(toc, h)}</aside>',
                "</main>", "</div>"]
    footer_links = [(ui["about"], "/about/"), (ui["privacy"], "/privacy/"), (ui["terms"], "/terms/"),
                    (ui["sitemap"], "/sitemap/")]
    out += [f'<footer class="{p}-footer">']
    if site.skeleton != "docs":
        out.append(f'<div class="{p}-newsletter"><h2>{h.text(ui["subscribe"])}</h2>'
                   f'<form action="/newsletter/" method="post">'
                   + h.void("input", [("type", "email"), ("name", "email"), ("placeholder", ui["email"])])
                   + ' <button type="submit">OK</button></form></div>')
    out += [links_html(footer_links, h),
            f'<p class="{p}-share">{h.text(ui["share"])}: ' + h.text(" · ").join(
                f'<a href="/share/{slug}">{label}</a>' for slug, label in SHARE_TARGETS) + "</p>",
            f'<p class="{p}-copyright">{h.text(copyright_line(site))}</p>',
            "</footer>"]
    if site.skeleton == "news" and cookie:
        out.append(cookie)
    out += [h.script(site_js(site)), "</body>", "</html>"]
    return "\n".join(line for line in out if line) + "\n"


def render_spam_page(site: Site, content: Content, rng: Rng) -> str:
    """A crude keyword-stuffed page with hidden text and a meta refresh."""
    h = Html(site)
    keywords = ", ".join(label for label, _ in content.blocks[-1][1])
    paragraphs = "\n".join(f'<div class="promo">{h.text(value)}</div>' for kind, value in content.blocks if kind == "p")
    links = "\n".join(f'<a href="{href}">{h.text(label)}</a>' for label, href in content.blocks[-1][1])
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>{h.text(content.title)}</title>\n'
            f'<meta name="keywords" content="{html.escape(keywords)}">\n'
            f'<meta http-equiv="refresh" content="{rng.between(5, 30)};url=/go/{rng.between(100, 999)}">\n'
            f"<style>body{{background:#ff0;color:#c00;font-size:22px}}.promo{{font-weight:bold}}"
            f".hide{{display:none}}</style>\n</head>\n<body>\n<h1>{h.text(content.title)}</h1>\n{paragraphs}\n"
            f'<div class="hide">{links}</div>\n'
            f"<script>setTimeout(function(){{window.location.href='/go/{rng.between(100, 999)}';}}, 3000);</script>\n"
            f"</body>\n</html>\n")


def render_bare_page(content: Content) -> str:
    """A template-less page, as served by parked domains and loading screens."""
    lines = "<br>\n".join(html.escape(line) for line in content.blocks[0][1])
    return (f'<html><head><meta charset="utf-8"><title>{html.escape(content.title)}</title></head>\n'
            f"<body>\n{lines}\n</body></html>\n")


# --------------------------------------------------------------------------- web-weight pages

# "lean" pages hold little besides their article. "web" pages carry the markup of real ones around
# the same article: inline styles and scripts, JSON-LD, an icon sprite, a mega-menu, layout div soup
# with utility and hashed class names, ad slots, related cards, comments, a consent dialog, a fat
# footer and tracker tags, indented as content systems print them. With seed 20240317 the median
# HTML page is 95 KB (lean: 18 KB) with about 1,000 elements, and main text (resiliparse's) is
# 14.5 % of all HTML bytes (lean: 68 %).
PAGE_WEIGHTS = ("lean", "web")
WEB_UI = {
    "en": ("Reply", "Comments", "Read more", "Advertisement", "Follow us", "Trending now", "Skip to content"),
    "de": ("Antworten", "Kommentare", "Weiterlesen", "Anzeige", "Folgen Sie uns", "Gerade beliebt",
           "Zum Inhalt springen"),
    "fr": ("Répondre", "Commentaires", "Lire la suite", "Publicité", "Suivez-nous", "Tendances",
           "Aller au contenu"),
    "es": ("Responder", "Comentarios", "Leer más", "Publicidad", "Síguenos", "Tendencias", "Saltar al contenido"),
    "ru": ("Ответить", "Комментарии", "Читать далее", "Реклама", "Мы в соцсетях", "Сейчас читают",
           "Перейти к содержимому"),
    "zh": ("回复", "评论", "阅读全文", "广告", "关注我们", "热门推荐", "跳到正文"),
}
ICON_NAMES = ("search", "menu", "close", "chevron-down", "chevron-right", "arrow-up", "facebook", "x", "mail",
              "rss", "user", "clock", "comment", "bookmark", "print", "link", "play", "home", "star", "bell")
# Invented third-party services: the pages load their tags from .invalid hosts.
TRACKERS = ("metricbeacon", "adgridly", "pixelhub", "tagfleet", "audiencelane", "clickmesh", "heatmapr")
UTILITY_CLASSES = split_words(
    "flex inline-flex grid block relative absolute sticky items-center items-start justify-between "
    "justify-center gap-1 gap-2 gap-4 gap-6 p-2 p-4 px-2 px-4 px-6 py-1 py-2 py-4 mt-2 mt-4 mb-2 mb-4 mx-auto "
    "w-full h-full max-w-7xl min-w-0 shrink-0 grow text-xs text-sm text-base text-lg font-medium font-semibold "
    "font-bold leading-tight tracking-wide uppercase truncate line-clamp-2 rounded rounded-lg rounded-full "
    "shadow-sm shadow-md border border-b border-t bg-white bg-gray-50 text-gray-500 text-gray-700 "
    "text-gray-900 hover:underline hover:text-gray-900 focus:outline-none transition duration-200 "
    "overflow-hidden object-cover aspect-video sm:block md:flex md:grid-cols-2 lg:grid-cols-3 "
    "lg:w-1/3 lg:px-8 dark:bg-gray-900 dark:text-gray-100 z-10 space-y-2 space-x-4")
LAYOUT_NAMES = ("container", "row", "col", "wrapper", "inner", "block", "section", "grid", "column",
                "content-area", "site-content", "layout", "stack", "region", "panel", "widget-wrap")
CSS_BLOCKS = ("header", "nav", "mega", "card", "btn", "hero", "widget", "footer", "modal", "badge", "grid",
              "teaser", "comment", "share", "crumbs", "pager", "ad-slot", "newsletter", "author", "tag")
CSS_ELEMENTS = ("inner", "title", "link", "item", "icon", "media", "body", "meta", "label", "list", "wrap", "image")
CSS_DECLARATIONS = (
    "display:flex", "display:grid", "display:none", "display:block", "align-items:center",
    "justify-content:space-between", "flex-wrap:wrap", "flex:1 1 {a}0%", "gap:{a}px", "padding:{a}px {b}px",
    "margin:0 auto", "margin-bottom:{a}px", "color:{c}", "background-color:{c}", "font-size:{r}rem",
    "line-height:{r}", "font-weight:{w}", "border-radius:{a}px", "border:1px solid {c}",
    "box-shadow:0 {a}px {b}px rgba(0,0,0,.{a})", "transition:opacity .{a}s ease-in-out,transform .{b}s",
    "position:relative", "position:absolute", "top:{a}px", "z-index:{b}", "width:{p}%", "max-width:{x}px",
    "grid-template-columns:repeat({a},minmax(0,1fr))", "text-transform:uppercase", "letter-spacing:.0{a}em",
    "overflow:hidden", "white-space:nowrap", "text-overflow:ellipsis", "transform:translateY(-{a}px)",
    "opacity:.{a}", "cursor:pointer", "object-fit:cover",
)
JS_EVENTS = ("click", "scroll", "resize", "keydown", "focusin", "mouseenter", "touchstart", "visibilitychange")
CONSENT_PURPOSES = 10


def web_rng(label: str) -> Rng:
    """An Rng for web-weight markup, independent of every stream the lean pages draw from."""
    return Rng(int.from_bytes(hashlib.sha256(f"web:{label}".encode()).digest()[:8], "big"))


class Soup:
    """Writes a site's markup habits: utility and hashed class lists, nested wrappers, CMS indentation."""

    def __init__(self, site: Site, h: Html, rng: Rng) -> None:
        self.p, self.h, self.rng = site.prefix, h, rng

    def classes(self, name: str) -> str:
        """A class attribute value: a BEM name, a few utility classes and sometimes a hashed one."""
        extra = self.rng.sample(UTILITY_CLASSES, self.rng.between(0, 3))
        if self.rng.chance(0.3):
            extra.append(f"css-{self.rng.bits(30):x}")
        return " ".join([f"{self.p}-{name}", *extra])

    def el(self, tag: str, name: str, inner: str, attrs: str = "") -> str:
        """One element with a class list."""
        return f'<{tag} class="{self.classes(name)}"{attrs}>{inner}</{tag}>'

    def nest(self, inner: str, depth: int, indent: int = 1) -> str:
        """`inner` inside `depth` layout divs, each on its own indented line."""
        for level in range(depth, 0, -1):
            pad = "\n" + "\t" * (indent + level - 1)
            inner = f'{pad}<div class="{self.classes(self.rng.choice(LAYOUT_NAMES))}">{inner}{pad}</div>'
        return inner

    def links(self, name: str, items: list[tuple[str, str]], indent: int) -> str:
        """A list of links, one item per indented line, each label inside a span."""
        pad = "\n" + "\t" * indent
        return self.el("ul", f"{name}__list", "".join(
            pad + self.el("li", f"{name}__item", self.el(
                "a", f"{name}__link", self.el("span", f"{name}__label", self.h.text(label)),
                f' href="{html.escape(href)}"')) for label, href in items) + pad)

    def icon(self, name: str) -> str:
        """An inline SVG that uses a symbol of the page's sprite."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{self.p}-icon {self.p}-icon--{name}" width="24" '
                f'height="24" aria-hidden="true"><use href="#{self.p}-icon-{name}"/></svg>')

    def image(self, stem: str, width: int, height: int) -> str:
        """A lazy responsive image with a srcset, as content systems emit them."""
        srcset = ", ".join(f"{stem}-{width * k}x{height * k}.jpg {width * k}w" for k in (1, 2))
        return self.h.void("img", [("src", f"{stem}-{width}x{height}.jpg"), ("srcset", srcset),
                                   ("width", str(width)), ("height", str(height)), ("alt", ""),
                                   ("loading", "lazy"), ("decoding", "async")])


class WebMarkup:
    """The markup real pages carry around their content, for one page: its site's template (the same
    on every page of the site) and per-page parts (JSON-LD, related cards, comments, ads, tracker ids).
    """

    def __init__(self, doc: Doc, titles: dict) -> None:
        self.doc, self.site = doc, doc.site
        self.h = Html(doc.site, xhtml=doc.variant in ("xhtml", "text_xml"))
        self.template = site_template(doc.site, self.h.xhtml)
        self.rng = web_rng(str(doc.seed))
        self.soup = Soup(doc.site, self.h, self.rng)
        self.titles = titles.get(doc.site.domain, [])
        self.labels = WEB_UI[doc.site.lang]

    def layout(self, main: str) -> str:
        """Wrap a page's main element in layout divs, with share bar, ads, related cards, comments and sidebar."""
        rng, soup, content = self.rng, self.soup, self.doc.content
        inner = [self.template.share_bar, self.ad_slot("top"), main]
        if content.byline:
            inner += [self.author_box(), self.ad_slot("mid")]
        inner.append(self.related_cards())
        if content.byline and rng.chance(0.6):
            inner.append(self.comments())
        column = soup.nest("\n".join(inner), rng.between(3, 6), indent=3)
        sidebar = soup.el("aside", "sidebar", soup.nest(
            self.ad_slot("side") + self.trending() + self.template.tag_cloud, rng.between(2, 4), indent=3))
        return soup.nest(column + sidebar, rng.between(3, 6))

    def dress(self, page: str) -> str:
        """Add the template's head, top-of-body and end-of-body markup to a rendered page."""
        head, _, body = page.partition("</head>")
        opening, _, body = body.partition(">")  # the rest of the <body ...> tag
        body, _, closing = body.rpartition("</body>")
        return "\n".join([head + self.template.head + self.json_ld(), "</head>" + opening + ">",
                          self.template.top, body + self.template.footer + self.trackers(), "</body>" + closing])

    def json_ld(self) -> str:
        """schema.org metadata of the page, escaped so that it is also valid inside XHTML."""
        doc, site, content, rng = self.doc, self.site, self.doc.content, self.rng
        year, month, day = content.published or (2024, 3, 1)
        home = f"https://{site.domain}/"
        graph = [{"@type": "WebSite", "@id": f"{home}#website", "url": home, "name": site.name,
                  "inLanguage": site.html_lang,
                  "potentialAction": {"@type": "SearchAction", "target": f"{home}search/?q={{q}}",
                                      "query-input": "required name=q"}},
                 {"@type": "Organization", "@id": f"{home}#org", "name": site.name,
                  "logo": {"@type": "ImageObject", "url": f"{home}static/{site.prefix}-logo.png",
                           "width": 600, "height": 60}},
                 {"@type": "BlogPosting" if site.skeleton == "blog" else "NewsArticle", "@id": f"{doc.url}#article",
                  "headline": content.title, "url": doc.url, "mainEntityOfPage": doc.canonical or doc.url,
                  "datePublished": f"{year}-{month:02d}-{day:02d}T{rng.below(24):02d}:00:00+00:00",
                  "publisher": {"@id": f"{home}#org"},
                  "image": [f"{home}uploads/{year}/{month:02d}/{rng.bits(32):08x}-{w}.jpg" for w in (1200, 800, 400)]}]
        data = json.dumps({"@context": "https://schema.org", "@graph": graph}, ensure_ascii=False)
        data = data.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        return f'\n<script type="application/ld+json">{data}</script>'

    def ad_slot(self, place: str) -> str:
        """An ad container as ad servers leave it: a label, nested divs and an empty iframe."""
        slot = f"{self.site.prefix}-ad-{place}-{self.rng.bits(24):06x}"
        frame = (f'<iframe id="{slot}-frame" title="{html.escape(self.labels[3])}" width="300" height="250" '
                 f'style="border:0;vertical-align:bottom" data-load-complete="true"></iframe>')
        label = self.soup.el("span", "ad-label", self.h.text(self.labels[3]))
        return self.soup.el("div", f"ad-slot--{place}", label + self.soup.nest(frame, self.rng.between(2, 4), 4),
                            f' data-slot="{slot}" data-sizes="300x250,728x90"')

    def author_box(self) -> str:
        """An author card with avatar and social links."""
        soup = self.soup
        author = self.doc.content.byline.split(" · ")[0]
        body = soup.el("p", "author__name", self.h.text(author)) + self.template.social
        return soup.el("div", "author", soup.el("div", "author__media", soup.image(
            f"/avatars/{self.rng.bits(32):08x}", 96, 96)) + soup.el("div", "author__body", body))

    def related_cards(self) -> str:
        """A grid of teaser cards for other articles of the site."""
        rng, soup, h = self.rng, self.soup, self.h
        cards = []
        for i, (title, url) in enumerate(rng.sample(self.titles, min(len(self.titles), rng.between(4, 8)))):
            media = soup.el("div", "card__media", soup.el("picture", "card__picture", soup.image(
                f"/uploads/{rng.bits(32):08x}", 300, 200)))
            meta = soup.el("div", "card__meta", soup.el("span", "card__more", h.text(self.labels[2]))
                           + soup.el("span", "card__time", f"{rng.between(2, 59)} min"))
            body = soup.el("div", "card__body", soup.el("h3", "card__title", h.text(title)) + meta)
            link = soup.el("a", "card__link", media + body, f' href="{html.escape(url)}" data-track="related|{i}"')
            cards.append(soup.nest(soup.el("div", "card", link, f' data-index="{i}"'), rng.between(1, 3), 4))
        return soup.el("section", "related", soup.el("div", "grid", "".join(cards)))

    def comments(self) -> str:
        """A reader comment thread of a few short posts in the page's language."""
        rng, soup, h, content = self.rng, self.soup, self.h, self.doc.content
        grammar = GRAMMARS[content.lang]
        writer = Writer(grammar, content.topic or TOPICS[0], rng)
        posts = []
        for n in range(rng.between(2, 6)):
            month, day = rng.between(1, 3), rng.between(1, 28)
            author = soup.el("div", "comment__author", soup.image(f"/avatars/{rng.bits(32):08x}", 48, 48)
                             + soup.el("b", "comment__name", h.text(writer.name())))
            when = soup.el("div", "comment__meta", f'<time datetime="2024-{month:02d}-{day:02d}">'
                           f"{h.text(grammar.date(2024, month, day))}</time>")
            text = soup.el("div", "comment__content", f"<p>{h.text(grammar.paragraph(writer, rng.between(1, 3)))}</p>")
            reply = soup.el("div", "comment__reply", soup.el("a", "comment__reply-link", h.text(self.labels[0]),
                                                             f' rel="nofollow" href="#comment-{n}"'))
            posts.append("\n\t\t\t\t" + soup.el("li", "comment", soup.el("div", "comment__body", soup.el(
                "footer", "comment__head", author + when) + text + reply), f' id="comment-{rng.between(100, 99999)}"'))
        title = soup.el("h2", "comments__title", f"{h.text(self.labels[1])} ({len(posts)})")
        return soup.el("section", "comments", title + soup.el("ol", "comments__list", "".join(posts)), ' id="comments"')

    def trending(self) -> str:
        """The sidebar's list of popular articles with thumbnails."""
        rng, soup, h = self.rng, self.soup, self.h
        items = "".join(
            "\n\t\t\t\t" + soup.el("li", "trending__item", soup.el("a", "trending__link", soup.image(
                f"/uploads/{rng.bits(32):08x}", 80, 80) + soup.el("span", "trending__title", h.text(title)),
                f' href="{html.escape(url)}"'))
            for title, url in rng.sample(self.titles, min(len(self.titles), rng.between(4, 7))))
        return soup.el("div", "trending", soup.el("h3", "trending__heading", h.text(self.labels[5]))
                       + soup.el("ol", "trending__list", items))

    def trackers(self) -> str:
        """Tag-manager and pixel snippets at the end of the body, with per-page ids."""
        rng, h, p = self.rng, self.h, self.site.prefix
        parts = []
        for name in self.template.trackers:
            account = f"{name[:2].upper()}-{rng.bits(28):07X}"
            parts.append(f'<script async="async" src="https://cdn.{name}.invalid/t.js?id={account}"></script>')
            parts.append(h.script(
                f"window.{p}Layer=window.{p}Layer||[];window.{p}Layer.push({{'event':'pageview','tracker':'{name}',"
                f"'account':'{account}','page_id':{rng.between(1000, 999999)},'ts':Date.now()}});"))
            pixel = h.void("img", [("height", "1"), ("width", "1"), ("style", "display:none"), ("alt", ""),
                                   ("src", f"https://px.{name}.invalid/tr?id={account}&ev=PageView&noscript=1")])
            parts.append(f"<noscript>{pixel}</noscript>")
        return "\n" + "\n".join(parts)


@dataclass(frozen=True)
class SiteTemplate:
    """The parts of a site's web-weight markup that are the same on every page of the site."""

    head: str
    top: str
    footer: str
    share_bar: str
    social: str
    tag_cloud: str
    trackers: tuple[str, ...]


@functools.cache
def site_template(site: Site, xhtml: bool) -> SiteTemplate:
    """Build a site's template once; its heft (0.6 to 1.4 times the typical size) is drawn per site."""
    rng, h, p = web_rng(site.domain), Html(site, xhtml=xhtml), site.prefix
    soup = Soup(site, h, rng)
    lex, labels, ui = GRAMMARS[site.lang].lex, WEB_UI[site.lang], UI[site.lang]
    words = list(dict.fromkeys(capitalize(noun.word) for nouns in lex.topics.values() for noun in nouns))
    heft = 0.6 + 0.8 * rng.random()
    metas = (("twitter:card", "summary_large_image"), ("twitter:site", f"@{p}news"),
             ("robots", "max-image-preview:large"), ("theme-color", site.color))
    head = "\n".join([
        *(h.void("link", [("rel", rel), ("href", f"https://{host}.{site.domain}/")])
          for rel, host in (("dns-prefetch", "cdn"), ("preconnect", "fonts"), ("dns-prefetch", "stats"))),
        *(h.void("link", [("rel", "preload"), ("as", "font"), ("type", "font/woff2"), ("crossorigin", "anonymous"),
                          ("href", f"/assets/fonts/{p}-{weight}.woff2")]) for weight in (400, 700)),
        *(h.void("meta", [("name", name), ("content", value)]) for name, value in metas),
        h.void("link", [("rel", "alternate"), ("type", "application/rss+xml"), ("href", "/feed/")]),
        h.style(theme_css(rng, site, int(7_000 * heft))),
        h.script(consent_config(rng, site, int(2_000 * heft))),
        h.script(script_bundle(rng, p, int(6_000 * heft))),
    ])
    sprite = ('<svg xmlns="http://www.w3.org/2000/svg" style="display:none" aria-hidden="true">' + "".join(
        f'<symbol id="{p}-icon-{name}" viewBox="0 0 24 24"><path d="{svg_path(rng)}"/></symbol>'
        for name in ICON_NAMES) + "</svg>")
    social = soup.el("ul", "social", "".join(soup.el("li", "social__item", soup.el(
        "a", "social__link", soup.icon(name), f' href="/follow/{name}" aria-label="{name}"'))
        for name in ("facebook", "x", "rss", "mail")))
    topics = TOPIC_NAMES[site.lang].split("|")
    menu = "".join(
        "\n\t\t" + soup.el("li", "mega__top", soup.el(
            "a", "mega__toplink", h.text(topics[index]) + soup.icon("chevron-down"),
            f' href="/category/{slugify(TOPICS[index], "en")}/" aria-expanded="false"') + soup.nest("".join(
                soup.el("div", "mega__col", soup.el("p", "mega__heading", h.text(rng.choice(words))) + soup.links(
                    "mega", [(word, f"/{slugify(TOPICS[index], 'en')}/{slugify(word, site.lang) or j}/")
                             for j, word in enumerate(rng.sample(words, rng.between(4, 7)))], 5))
                for _ in range(max(1, round(rng.between(1, 2) * heft)))), 2, 3))
        for index in range(len(topics)))
    dialog = "".join(
        soup.nest(soup.el("label", "consent__purpose", h.void("input", [("type", "checkbox"), ("name", f"purpose-{n}")])
                          + soup.el("span", "consent__name", h.text(rng.choice(words))) + soup.el("span", "consent__toggle", "")),
                  2, 3) for n in range(1, CONSENT_PURPOSES + 1))
    top = "\n".join([
        sprite, soup.el("a", "skip", h.text(labels[6]), ' href="#content"'),
        soup.el("div", "consent", soup.nest(
            soup.el("p", "consent__text", h.text(ui["cookie"])) + dialog
            + soup.el("button", "consent__accept", h.text(ui["accept"]), ' type="button"'), 3, 2),
            ' role="dialog" aria-modal="true" hidden="hidden"'),
        soup.el("div", "promo-bar", soup.nest(soup.icon("bell") + soup.el(
            "a", "promo-bar__link", h.text(ui["subscribe"]), ' href="/newsletter/"'), 2, 2)),
        soup.el("div", "mega", soup.nest(soup.el("ul", "mega__menu", menu), 2, 1),
                f' role="navigation" aria-label="{html.escape(ui["menu"])}"'),
    ])
    columns = "".join(
        soup.nest(soup.el("h4", "footer__title", h.text(rng.choice(words))) + soup.links(
            "footer", [(word, f"/{slugify(word, site.lang) or j}/")
                       for j, word in enumerate(rng.sample(words, rng.between(6, 10)))], 4), 2, 2)
        for _ in range(rng.between(3, 5)))
    footer = "\n" + soup.el("div", "site-footer", soup.nest(
        soup.el("div", "footer__grid", columns) + soup.el("div", "footer__follow", soup.el(
            "p", "footer__follow-title", h.text(labels[4])) + social)
        + soup.el("div", "footer__legal", soup.el("p", "footer__copy", h.text(copyright_line(site)))), 3))
    share_bar = soup.el("div", "share-bar", "".join(soup.el(
        "a", f"share-bar__btn--{name}", soup.icon(name) + soup.el("span", "share-bar__label", name),
        f' href="/share/{name}" rel="noopener" aria-label="{name}"') for name in ("facebook", "x", "mail", "link", "print")))
    tag_cloud = soup.el("div", "tag-cloud", "".join(
        soup.el("a", "tag-cloud__tag", h.text(word), f' href="/tag/{slugify(word, site.lang) or i}/"')
        for i, word in enumerate(rng.sample(words, rng.between(15, 30)))))
    trackers = tuple(rng.sample(TRACKERS, rng.between(2, 4)))
    return SiteTemplate(head, top, footer, share_bar, social, tag_cloud, trackers)


def svg_path(rng: Rng) -> str:
    """Path data of an icon: a move, then relative curves and lines with two-decimal coordinates."""
    def number() -> str:
        return f"{rng.between(-1200, 1200) / 100:.2f}"

    steps = [f"M{rng.between(2, 22)}.{rng.below(100):02d} {rng.between(2, 22)}.{rng.below(100):02d}"]
    for _ in range(rng.between(4, 14)):
        command = rng.choice("cclhvs")
        steps.append(command + " ".join(number() for _ in range({"c": 6, "s": 4, "l": 2}.get(command, 1))))
    return "".join(steps) + "z"


def theme_css(rng: Rng, site: Site, size: int) -> str:
    """A theme stylesheet of about `size` bytes: BEM component rules, hashed CSS-in-JS classes, media queries."""
    p, rules, total = site.prefix, [], 0
    while total < size:
        roll, block = rng.random(), rng.choice(CSS_BLOCKS)
        if roll < 0.5:
            selector = f".{p}-{block}__{rng.choice(CSS_ELEMENTS)}"
        elif roll < 0.75:
            selector = f".css-{rng.bits(30):x}"
        else:
            selector = f".{p}-{block}:hover .{p}-{block}__{rng.choice(CSS_ELEMENTS)},.{p}-{block}:focus-within>a"
        declarations = ";".join(css_declaration(rng, site) for _ in range(rng.between(2, 7)))
        rule = f"{selector}{{{declarations}}}"
        if rng.chance(0.15):
            rule = f"@media (min-width:{rng.choice((576, 768, 992, 1200))}px){{{rule}}}"
        rules.append(rule)
        total += len(rule)
    return "".join(rules)


def css_declaration(rng: Rng, site: Site) -> str:
    """One CSS declaration with random values."""
    return rng.choice(CSS_DECLARATIONS).format(
        a=rng.between(1, 9), b=rng.between(10, 48), c=rng.choice((site.color, *PALETTE, "#fff", "#111")),
        r=f"{rng.between(8, 30) / 10:.1f}", w=rng.choice((400, 500, 600, 700)), p=rng.between(10, 100),
        x=rng.between(120, 1440))


def consent_config(rng: Rng, site: Site, size: int) -> str:
    """A consent manager's inline vendor list: about `size` bytes of JSON."""
    vendors, total = [], 0
    while total < size:
        name = f"{rng.choice(CODE_NOUNS).title()}{rng.choice(CODE_VERBS).title()} {rng.choice(('Ltd', 'GmbH', 'SAS', 'Inc'))}"
        vendor = json.dumps({"id": rng.between(1, 1200), "name": name,
                             "purposes": sorted(rng.sample(range(1, CONSENT_PURPOSES + 1), rng.between(1, 6))),
                             "policyUrl": f"https://{slugify(name, 'en')}.invalid/privacy",
                             "cookieMaxAgeSeconds": rng.between(1, 400) * 86400}, separators=(",", ":"))
        vendors.append(vendor)
        total += len(vendor)
    return f'window.__{site.prefix}Consent={{"version":{rng.between(2, 9)},"vendors":[{",".join(vendors)}]}};'


def script_bundle(rng: Rng, prefix: str, size: int) -> str:
    """About `size` bytes of minified-looking site JavaScript: handlers, config objects and helpers."""
    def ident() -> str:
        return rng.choice("abcdefghijklmnopqrstuvwxyz") + rng.choice(("", "e", "t", "n", "r", "o")) + str(rng.below(99))

    parts, total = [f'!function(){{"use strict";var {prefix}=window.{prefix}||{{}};'], 0
    while total < size:
        name, noun, verb, number = ident(), rng.choice(CODE_NOUNS), rng.choice(CODE_VERBS), rng.between(2, 900)
        kind = rng.below(4)
        if kind == 0:
            part = (f"function {name}(e,t){{var n=document.querySelectorAll('[data-{prefix}-{noun}]');"
                    f"for(var r=0;r<n.length;r++){{n[r].addEventListener('{rng.choice(JS_EVENTS)}',function(o){{"
                    f"t&&t(o,e,{number})}},{{passive:!0}})}}return n.length}}")
        elif kind == 1:
            keys = ",".join(f"'{rng.choice(CODE_NOUNS)}'" for _ in range(rng.between(2, 8)))
            part = f"var {name}={{endpoint:'/api/{noun}/{verb}',retries:{number % 7},timeout:{number}e1,keys:[{keys}]}};"
        elif kind == 2:
            part = (f"{prefix}.{verb}{noun.title()}=function(e){{return e?String(e).replace(/[^a-z0-9]+/gi,'-')"
                    f".toLowerCase().slice(0,{number}):''}};")
        else:
            part = (f"try{{window.localStorage.setItem('{prefix}_{noun}',JSON.stringify({{v:{number},t:Date.now(),"
                    f"s:{name}&&{name}.length}}))}}catch({ident()}){{}}")
        parts.append(part)
        total += len(part)
    return "".join(parts) + f"window.{prefix}={prefix}}}();"


# --------------------------------------------------------------------------- binary payloads

def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def stored_zlib(data: bytes) -> bytes:
    """A zlib stream of one uncompressed deflate block, identical under every zlib implementation."""
    return (b"\x78\x01\x01" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data
            + struct.pack(">I", zlib.adler32(data) & 0xFFFFFFFF))


def png_bytes(rng: Rng) -> bytes:
    """A small valid RGB PNG: a noisy two-colour gradient."""
    size = rng.between(10, 14)
    base, accent = [rng.below(256) for _ in range(3)], [rng.below(256) for _ in range(3)]
    raw = bytearray()
    for _ in range(size):
        raw.append(0)
        for x in range(size):
            for c in range(3):
                raw.append((base[c] * (size - x) + accent[c] * x) // size + rng.below(16) & 0xFF)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"tEXt", b"Software\x00corpusmill")
            + png_chunk(b"IDAT", stored_zlib(bytes(raw))) + png_chunk(b"IEND", b""))


def jpeg_bytes(rng: Rng) -> bytes:
    """JPEG-shaped bytes: JFIF header, quantisation table, frame and scan headers, stuffed entropy data, EOI."""
    width, height = rng.between(16, 64), rng.between(16, 64)
    quant = bytes(rng.between(2, 99) for _ in range(64))
    scan = bytearray()
    for _ in range(rng.between(240, 420)):
        value = rng.below(256)
        scan += b"\xff\x00" if value == 0xFF else bytes([value])
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x01\x00\x48\x00\x48\x00\x00"
            + b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + quant
            + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
            + b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
            + bytes(scan) + b"\xff\xd9")


def pdf_bytes(rng: Rng) -> bytes:
    """A one-page PDF with a few generated English lines and a correct xref table."""
    grammar = GRAMMARS["en"]
    w = Writer(grammar, rng.choice(TOPICS), rng)
    lines = [grammar.title(w)] + [grammar.sentence(w) for _ in range(rng.between(4, 8))]
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    stream = "BT /F1 11 Tf 72 770 Td 14 TL\n" + "\n".join(f"({line}) '" for line in escaped) + "\nET"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               "/Resources << /Font << /F1 5 0 R >> >> >>",
               f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


BINARY_TYPES = {"png": ("image/png", png_bytes, "images", "png"), "jpeg": ("image/jpeg", jpeg_bytes, "images", "jpg"),
                "pdf": ("application/pdf", pdf_bytes, "files", "pdf")}


# --------------------------------------------------------------------------- corpus plan

@dataclass
class Doc:
    """One document of the dump and its ground truth.

    variant says how a WARC response is served: html, header_charset, meta_charset, xhtml, text_xml,
    no_content_type, spam, bare, png, jpeg, pdf or redirect.
    """

    url: str
    fmt: str
    kind: str
    lang: str | None
    site: Site
    seed: int
    meta_seed: int
    content: Content | None = None
    variant: str = "html"
    charset: str | None = "utf-8"
    duplicate_of: str | None = None
    edit_rate: float | None = None
    canonical: str = ""
    location: str = ""
    file: str = ""

    @property
    def content_type(self) -> str | None:
        """The HTTP Content-Type header value (None for headerless responses and non-WARC records)."""
        if self.fmt != "warc" or self.variant == "no_content_type":
            return None
        fixed = {"header_charset": "text/html; charset=windows-1251", "meta_charset": "text/html",
                 "xhtml": "application/xhtml+xml", "text_xml": "text/xml", "spam": "text/html",
                 "bare": "text/html"}
        if self.variant in BINARY_TYPES:
            return BINARY_TYPES[self.variant][0]
        return fixed.get(self.variant, self.site.content_type)

    def label(self) -> dict:
        """The labels.json entry."""
        return {"file": self.file, "format": self.fmt, "kind": self.kind, "lang": self.lang,
                "duplicate_of": self.duplicate_of, "edit_rate": self.edit_rate, "charset": self.charset,
                "content_type": self.content_type}


class UrlBook:
    """Hands out URLs, disambiguating the rare collision so every URL is unique."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def claim(self, url: str) -> str:
        """Reserve url, or a paginated variant of it if already taken."""
        candidate, n = url, 2
        while candidate in self._used:
            candidate = f"{url}page/{n}/" if url.endswith("/") else f"{url}{'&' if '?' in url else '?'}page={n}"
            n += 1
        self._used.add(candidate)
        return candidate


def language_quota(n: int) -> list[str]:
    """About 40 % English, the rest spread evenly over the other languages."""
    english = (2 * n + 2) // 5
    rest, others = n - english, LANGS[1:]
    return ["en"] * english + [others[i % len(others)] for i in range(rest)]


def article_url(site: Site, content: Content, rng: Rng) -> str:
    """A URL in the site's permalink style."""
    slug, ident = slugify(content.title, content.lang), rng.between(10000, 999999)
    if site.skeleton == "blog":
        year, month, _ = content.published
        return f"https://{site.domain}/{year}/{month:02d}/{slug or ident}/"
    if site.skeleton == "news":
        return f"https://{site.domain}/{slugify(content.topic, 'en')}/{slug + '-' if slug else ''}{ident}.html"
    return f"https://{site.domain}/articles/{ident}/{slug}" if slug else f"https://{site.domain}/articles/{ident}"


def plan_originals(rng: Rng, sites: list[Site], urls: UrlBook) -> list[Doc]:
    """Generate the original articles of every file."""
    docs = []
    for fmt in FILE_PLAN:
        for lang in rng.shuffled(language_quota(FILE_PLAN[fmt]["article"])):
            sub = rng.child()
            content = build_article(lang, sub.choice(TOPICS), sub)
            site = sub.choice([site for site in sites if site.lang == lang])
            url = urls.claim(article_url(site, content, sub))
            docs.append(Doc(url, fmt, "article", lang, site, sub.bits(64), sub.bits(64), content, canonical=url))
    return docs


def assign_special_variants(rng: Rng, originals: list[Doc]) -> None:
    """Serve a few WARC articles with legacy charsets, as XHTML/XML, or without a Content-Type."""
    for lang, variant, charset in (("ru", "header_charset", "windows-1251"), ("de", "meta_charset", "iso-8859-1"),
                                   ("en", "xhtml", "utf-8"), ("fr", "text_xml", "utf-8"),
                                   ("es", "no_content_type", "utf-8")):
        doc = rng.choice([d for d in originals if d.fmt == "warc" and d.lang == lang and d.variant == "html"])
        doc.variant, doc.charset = variant, charset


def plan_duplicates(rng: Rng, sites: list[Site], urls: UrlBook, originals: list[Doc]) -> list[Doc]:
    """Exact and near copies of plain articles, often in another file or format than the original."""
    pools = {fmt: rng.shuffled([d for d in originals if d.fmt == fmt and d.variant == "html"])
             for fmt in ("warc", "jsonl")}
    specs = rng.shuffled([(fmt, kind) for fmt in FILE_PLAN for kind in ("exact_dup", "near_dup")
                          for _ in range(FILE_PLAN[fmt][kind])])
    near_total = sum(1 for _, kind in specs if kind == "near_dup")
    near_index, docs = 0, []
    for fmt, kind in specs:
        original = pools["jsonl" if rng.chance(0.4) else "warc"].pop()
        sub = rng.child()
        if kind == "near_dup":
            target = 0.01 + 0.09 * (near_index + sub.random()) / near_total
            content, rate = near_duplicate(original.content, target, sub)
            near_index += 1
        else:
            content, rate = original.content, 0.0
        if fmt == "warc" and original.fmt == "warc" and sub.chance(0.5):
            site, canonical = original.site, original.url
            url = urls.claim(original.url + sub.choice(URL_VARIANTS))
            seed = original.seed if kind == "exact_dup" else sub.bits(64)
        else:
            site = sub.choice([site for site in sites if site.lang == original.lang])
            url = canonical = urls.claim(article_url(site, content, sub))
            seed = sub.bits(64)
        docs.append(Doc(url, fmt, kind, original.lang, site, seed, sub.bits(64), content,
                        duplicate_of=original.url, edit_rate=round(rate, 6), canonical=canonical))
    return docs


def plan_other_pages(rng: Rng, sites: list[Site], spam_sites: list[Site], urls: UrlBook,
                     originals: list[Doc]) -> list[Doc]:
    """Navigation, spam, repeated-line, short, binary, redirect and 404 pages."""
    titles = {site.domain: [(d.content.title, d.url) for d in originals if d.site == site] for site in sites}
    docs = []
    for fmt, plan in FILE_PLAN.items():
        for kind in ("nav", "spam", "repeated", "short", "binary", "redirect", "not_found"):
            for index in range(plan.get(kind, 0)):
                sub = rng.child()
                site = sub.choice(spam_sites if kind == "spam" else sites)
                lang, variant, charset, location, content = site.lang, "html", "utf-8", "", None
                number = sub.between(2, 9999)
                if kind == "nav":
                    content = build_nav(lang, sub, titles[site.domain])
                    path = f"/{slugify(content.title, lang) or 'nav'}/"
                elif kind == "spam":
                    content, variant = build_spam(lang, sub), "spam"
                    path = f"/{slugify(content.blocks[-1][1][0][0], lang) or 'deal'}-{number}.html"
                elif kind == "repeated":
                    content = build_repeated(lang, sub)
                    variant = "bare" if sub.chance(0.5) else "html"
                    path = f"/{sub.choice(('newsletter', 'loading', 'info', 'status', 'landing'))}/{number}"
                elif kind == "short":
                    content = build_short(lang, sub)
                    path = f"/{sub.choice(('contact/thanks', 'coming-soon', 'notice', 'drafts'))}/{number}/"
                elif kind == "not_found":
                    content = build_not_found(lang)
                    path = f"/{slugify(sub.choice(titles[site.domain])[0], lang) or number}-{number}/"
                elif kind == "binary":
                    variant = ("png", "jpeg", "png", "pdf")[index % 4]
                    _, _, folder, extension = BINARY_TYPES[variant]
                    lang = charset = None
                    path = f"/{folder}/{slugify(sub.choice(CODE_NOUNS), 'en')}-{number}.{extension}"
                else:
                    variant, lang, charset = "redirect", None, None
                    location = sub.choice(titles[site.domain])[1]
                    path = f"/?p={number}"
                url = urls.claim(f"https://{site.domain}{path}")
                docs.append(Doc(url, fmt, kind, lang, site, sub.bits(64), sub.bits(64), content, variant, charset,
                                canonical=url, location=location))
    return docs


def arrange_files(rng: Rng, docs: list[Doc]) -> list[Doc]:
    """Shuffle documents within each format and split the WARC pages over the crawl files."""
    ordered = []
    for fmt in FILE_PLAN:
        group = rng.shuffled([d for d in docs if d.fmt == fmt])
        for i, doc in enumerate(group):
            if fmt == "warc":
                doc.file = f"crawl-{i * WARC_FILE_COUNT // len(group):05d}.warc.gz"
            else:
                doc.file = WET_FILE if fmt == "wet" else JSONL_FILE
        ordered += group
    return ordered


def build_corpus(seed: int = DEFAULT_SEED) -> list[Doc]:
    """Plan and generate every document of the dump, in output order."""
    rng = Rng(seed)
    sites, spam_sites = build_sites(rng.child())
    urls = UrlBook()
    originals = plan_originals(rng.child(), sites, urls)
    assign_special_variants(rng.child(), originals)
    duplicates = plan_duplicates(rng.child(), sites, urls, originals)
    pages = plan_other_pages(rng.child(), sites, spam_sites, urls, originals)
    return arrange_files(rng.child(), originals + duplicates + pages)


# --------------------------------------------------------------------------- serialisation

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ISO_639_3 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa", "ru": "rus", "zh": "zho"}
STATUS_TEXT = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}


@dataclass(frozen=True)
class Moment:
    """A timestamp in early 2024 (the crawl itself runs in March)."""

    month: int
    day: int
    hour: int
    minute: int
    second: int

    @classmethod
    def draw(cls, rng: Rng, month: int = 3, last_day: int = 31) -> Moment:
        """A random moment of the given month."""
        return cls(month, rng.between(1, last_day), rng.below(24), rng.below(60), rng.below(60))

    def warc(self) -> str:
        """ISO 8601 form used in WARC-Date."""
        return f"2024-{self.month:02d}-{self.day:02d}T{self.hour:02d}:{self.minute:02d}:{self.second:02d}Z"

    def http(self) -> str:
        """RFC 9110 form used in HTTP Date and Last-Modified headers."""
        weekday = WEEKDAYS[datetime.date(2024, self.month, self.day).weekday()]
        return (f"{weekday}, {self.day:02d} {MONTH_ABBR[self.month - 1]} 2024 "
                f"{self.hour:02d}:{self.minute:02d}:{self.second:02d} GMT")


def sha1_digest(data: bytes) -> str:
    """WARC digest: 'sha1:' + base32 of the SHA-1."""
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def gzip_member(data: bytes) -> bytes:
    """A gzip member with mtime 0, no file name and a fixed compression level."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
    body = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def warc_record(headers: list[tuple[str, str]], block: bytes) -> bytes:
    """A WARC/1.0 record: version line, headers, blank line, block, CRLF CRLF."""
    head = "WARC/1.0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def derived_rng(seed: int, label: str) -> Rng:
    """An Rng for one output file, derived from the corpus seed and the file name."""
    return Rng(int.from_bytes(hashlib.sha256(f"{seed}:{label}".encode()).digest()[:8], "big"))


def warcinfo(file_name: str, record_id: str, moment: Moment, seed: int, description: str) -> bytes:
    """The warcinfo record opening a file."""
    fields = (f"software: corpusmill-sample-generator/1.0\r\nformat: WARC File Format 1.0\r\n"
              f"conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/\r\n"
              f"isPartOf: corpusmill-sample-2024-03\r\noperator: corpusmill\r\n"
              f"description: {description} (seed {seed})\r\nrobots: checked\r\n").encode()
    return warc_record([("WARC-Type", "warcinfo"), ("WARC-Date", moment.warc()),
                        ("WARC-Filename", file_name), ("WARC-Record-ID", f"<urn:uuid:{record_id}>"),
                        ("Content-Type", "application/warc-fields"), ("Content-Length", str(len(fields))),
                        ("WARC-Block-Digest", sha1_digest(fields))], fields)


def related_links(doc: Doc, titles: dict, rng: Rng) -> list[tuple[str, str]]:
    """A few other articles of the same site, excluding the page's own title."""
    others = [(title, url) for title, url in titles.get(doc.site.domain, []) if title != doc.content.title]
    return rng.sample(others, min(len(others), rng.between(4, 6)))


def page_title(doc: Doc) -> str:
    """The HTML <title>: page title plus site name."""
    return f"{doc.content.title}{doc.site.title_sep}{doc.site.name}"


def html_payload(doc: Doc, titles: dict, moment: Moment, weight: str = "lean") -> str:
    """Render an HTML document for a text page, dressed in a real site's markup for the "web" weight."""
    rng = Rng(doc.seed)
    web = WebMarkup(doc, titles) if weight == "web" else None
    if doc.variant == "spam":
        page = render_spam_page(doc.site, doc.content, rng)
    elif doc.variant == "bare":
        page = render_bare_page(doc.content)
    else:
        page = render_template_page(doc, titles, moment, rng, web)
    return web.dress(page) if web else page


def render_template_page(doc: Doc, titles: dict, moment: Moment, rng: Rng, web: WebMarkup | None) -> str:
    """Lay out a text page in its site's template, its main element wrapped in `web`'s layout if given."""
    h = Html(doc.site, xhtml=doc.variant in ("xhtml", "text_xml"))
    content = doc.content
    first = next((value for kind, value in content.blocks if kind == "p"), content.title)
    main = main_html(content, doc.kind, h, rng, doc.site.prefix)
    parts = PageParts(
        title=page_title(doc), description=first[:150].rsplit(" ", 1)[0] if " " in first[:150] else first[:80],
        canonical=doc.canonical, main=web.layout(main) if web else main,
        related=related_links(doc, titles, rng),
        headings=[(i, value) for i, (kind, value) in enumerate(content.blocks) if kind == "h2"],
        topic=TOPICS.index(content.topic) if content.topic else rng.below(len(TOPICS)),
        date_text=GRAMMARS[doc.site.lang].date(2024, 3, moment.day),
        charset=doc.charset, charset_in="http-equiv" if doc.variant == "meta_charset" else "meta")
    return render_page(doc.site, parts, h)


def http_response(doc: Doc, titles: dict, moment: Moment, weight: str) -> tuple[bytes, bytes, str | None]:
    """HTTP response head, payload and identified payload type for a WARC page."""
    rng = Rng(doc.meta_seed)
    if doc.variant in BINARY_TYPES:
        payload, identified = BINARY_TYPES[doc.variant][1](Rng(doc.seed)), BINARY_TYPES[doc.variant][0]
    elif doc.variant == "redirect":
        payload, identified = b"", None
    else:
        text = html_payload(doc, titles, moment, weight)
        payload = text.encode(doc.charset, errors="xmlcharrefreplace")
        identified = "application/xhtml+xml" if doc.variant in ("xhtml", "text_xml") else "text/html"
    status = {"redirect": 301}.get(doc.variant, 404 if doc.kind == "not_found" else 200)
    headers = [("Date", moment.http()), ("Server", doc.site.server)]
    if doc.content_type:
        headers.append(("Content-Type", doc.content_type))
    headers.append(("Content-Length", str(len(payload))))
    if doc.variant == "redirect":
        headers.append(("Location", doc.location))
    elif status == 200:
        headers += [("Last-Modified", Moment.draw(rng, rng.between(1, 2), 28).http()),
                    ("ETag", f'"{hashlib.sha1(payload).hexdigest()[:16]}"')]
    headers.append(("Cache-Control", rng.choice(("max-age=600", "no-cache", "public, max-age=86400"))))
    if doc.site.powered_by:
        headers.append(("X-Powered-By", doc.site.powered_by))
    if payload and rng.chance(0.6):
        headers.append(("X-Crawler-Content-Encoding", "gzip"))
    headers.append(("Connection", "close"))
    head = f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("ascii"), payload, identified


def http_request(doc: Doc) -> bytes:
    """The crawler's GET request for a page."""
    host, _, path = doc.url.removeprefix("https://").partition("/")
    language = doc.site.html_lang if doc.site.lang == "en" else f"{doc.site.html_lang},en;q=0.5"
    return (f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n"
            f"User-Agent: corpusmill-sample-crawler/1.0 (+https://corpusmill.invalid/crawler)\r\n"
            f"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
            f"Accept-Language: {language}\r\nAccept-Encoding: br,gzip\r\nConnection: Keep-Alive\r\n\r\n"
            ).encode("ascii")


def write_warc(path: Path, docs: list[Doc], titles: dict, seed: int, weight: str) -> None:
    """Write one crawl WARC: warcinfo, then request and response records per page of the given weight."""
    rng = derived_rng(seed, path.name)
    info_id = rng.uuid()
    members = [gzip_member(warcinfo(path.name, info_id, Moment(3, 1, 0, 0, 0), seed, "Synthetic crawl"))]
    for doc in docs:
        meta = Rng(doc.meta_seed ^ 0x5A5A)
        moment, request_id, response_id = Moment.draw(meta), meta.uuid(), meta.uuid()
        request = http_request(doc)
        members.append(gzip_member(warc_record([
            ("WARC-Type", "request"), ("WARC-Date", moment.warc()), ("WARC-Record-ID", f"<urn:uuid:{request_id}>"),
            ("Content-Length", str(len(request))), ("Content-Type", "application/http; msgtype=request"),
            ("WARC-Warcinfo-ID", f"<urn:uuid:{info_id}>"), ("WARC-IP-Address", doc.site.ip),
            ("WARC-Target-URI", doc.url), ("WARC-Block-Digest", sha1_digest(request))], request)))
        head, payload, identified = http_response(doc, titles, moment, weight)
        block = head + payload
        headers = [("WARC-Type", "response"), ("WARC-Date", moment.warc()),
                   ("WARC-Record-ID", f"<urn:uuid:{response_id}>"), ("Content-Length", str(len(block))),
                   ("Content-Type", "application/http; msgtype=response"),
                   ("WARC-Warcinfo-ID", f"<urn:uuid:{info_id}>"),
                   ("WARC-Concurrent-To", f"<urn:uuid:{request_id}>"), ("WARC-IP-Address", doc.site.ip),
                   ("WARC-Target-URI", doc.url), ("WARC-Payload-Digest", sha1_digest(payload)),
                   ("WARC-Block-Digest", sha1_digest(block))]
        if identified:
            headers.append(("WARC-Identified-Payload-Type", identified))
        members.append(gzip_member(warc_record(headers, block)))
    path.write_bytes(b"".join(members))


def wet_text(doc: Doc, titles: dict) -> str:
    """The visible text of a page as a WET extractor sees it: boilerplate lines around the main text."""
    content = doc.content
    if doc.variant in ("spam", "bare"):
        return content.main_text("\n")
    site, ui = doc.site, UI[doc.site.lang]
    lines = [page_title(doc), ui["home"], *TOPIC_NAMES[site.lang].split("|"), ui["about"], ui["contact"],
             content.main_text("\n")]
    if content.byline:
        lines += [ui["related"]] + [title for title, _ in related_links(doc, titles, Rng(doc.seed))]
    lines += [ui["subscribe"], f"{ui['share']}: " + " · ".join(label for _, label in SHARE_TARGETS),
              copyright_line(site)]
    if site.cookie:
        lines += [ui["cookie"], f"{ui['accept']} {ui['decline']}"]
    return "\n".join(lines)


def write_wet(path: Path, docs: list[Doc], titles: dict, seed: int) -> None:
    """Write the WET file: warcinfo, then one conversion record per page."""
    rng = derived_rng(seed, path.name)
    info_id = rng.uuid()
    members = [gzip_member(warcinfo(path.name, info_id, Moment(3, 1, 0, 0, 0), seed, "Synthetic WET extract"))]
    for doc in docs:
        meta = Rng(doc.meta_seed ^ 0x5A5A)
        moment, record_id, refers_to = Moment.draw(meta), meta.uuid(), meta.uuid()
        block = wet_text(doc, titles).encode("utf-8")
        members.append(gzip_member(warc_record([
            ("WARC-Type", "conversion"), ("WARC-Target-URI", doc.url), ("WARC-Date", moment.warc()),
            ("WARC-Record-ID", f"<urn:uuid:{record_id}>"), ("WARC-Refers-To", f"<urn:uuid:{refers_to}>"),
            ("WARC-Block-Digest", sha1_digest(block)), ("WARC-Identified-Content-Language", ISO_639_3[doc.lang]),
            ("Content-Type", "text/plain"), ("Content-Length", str(len(block)))], block)))
    path.write_bytes(b"".join(members))


def write_jsonl(path: Path, docs: list[Doc]) -> None:
    """Write the JSONL dump as one zstd frame with the content size recorded."""
    lines = []
    for doc in docs:
        meta = Rng(doc.meta_seed ^ 0x5A5A)
        record = {"id": f"{meta.bits(64):016x}", "url": doc.url, "text": doc.content.main_text(),
                  "meta": {"lang": doc.lang, "source": meta.choice(("web-extract", "news-feed", "forum-export"))}}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    data = "".join(lines).encode("utf-8")
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True, write_checksum=True)
    path.write_bytes(compressor.compress(data))


def labels_document(docs: list[Doc], seed: int) -> dict:
    """The labels.json structure."""
    files: dict = {}
    kinds: dict = {}
    langs: dict = {}
    for doc in docs:
        entry = files.setdefault(doc.file, {"format": doc.fmt, "documents": 0})
        entry["documents"] += 1
        kinds[doc.kind] = kinds.get(doc.kind, 0) + 1
        langs[str(doc.lang)] = langs.get(str(doc.lang), 0) + 1
    return {"seed": seed, "files": files, "counts": {"kind": kinds, "lang": langs},
            "documents": {doc.url: doc.label() for doc in docs}}


def generate(out_dir: Path, seed: int = DEFAULT_SEED, page_weight: str = "lean") -> None:
    """Write the WARC, WET, JSONL and labels files of the sample dump into out_dir.

    `page_weight` "web" dresses every HTML page in the markup of a real site (see PAGE_WEIGHTS).
    """
    if page_weight not in PAGE_WEIGHTS:
        raise ValueError(f"page_weight must be one of {', '.join(PAGE_WEIGHTS)}, got {page_weight!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = build_corpus(seed)
    titles: dict = {}
    for doc in docs:
        if doc.content is not None and doc.content.byline:
            titles.setdefault(doc.site.domain, []).append((doc.content.title, doc.url))
    files = sorted({doc.file for doc in docs})
    for name in files:
        group = [doc for doc in docs if doc.file == name]
        LOG.info("writing %s (%d documents)", name, len(group))
        if name == JSONL_FILE:
            write_jsonl(out_dir / name, group)
        elif name == WET_FILE:
            write_wet(out_dir / name, group, titles, seed)
        else:
            write_warc(out_dir / name, group, titles, seed, page_weight)
    labels = json.dumps(labels_document(docs, seed), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    (out_dir / LABELS_FILE).write_text(labels, encoding="utf-8")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus seed")
    parser.add_argument("--page-weight", choices=PAGE_WEIGHTS, default="lean",
                        help="lean: pages hold little besides their article; web: the markup of real sites around it")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    generate(args.out, args.seed, args.page_weight)
    labels = json.loads((args.out / LABELS_FILE).read_text(encoding="utf-8"))
    print(f"wrote {len(labels['documents'])} documents in {len(labels['files'])} files to {args.out}")


if __name__ == "__main__":
    main()
