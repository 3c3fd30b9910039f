#!/usr/bin/env python3
"""Generate corpus/benign.jsonl: realistic benign traffic of the voltfleet web tier.

    python3 bench/waf-corpus/assemble/benign.py [--out PATH] [--count N]

Deterministic: one random.Random with a fixed seed, no sets or hash order, no clock, so the
same version of this script writes the same bytes on every machine (Python 3.11, standard
library only). Every line is labelled "benign", source "voltfleet-synthetic".

What it models, with the share of each part (see PARTS below):

* the driver app speaking JSON to /api/v1 (find chargers, start and stop sessions, profile,
  payment methods, reviews, support messages), with bearer JWTs;
* the public website at / (static pages and assets, the charger map with its query string,
  the contact form, a support form with a file attached);
* the Back Office at /backoffice/ (server-rendered pages: search boxes, urlencoded POSTs of
  charger notes, driver records and id tokens, CSV imports as multipart uploads);
* roaming partners speaking OCPI 2.2.1 at /ocpi/2.2.1/ (PUT/PATCH of Locations, EVSEs,
  Connectors, Sessions, CDRs, Tariffs and Tokens, paginated GETs, commands, credentials).

It is meant to be hard on a WAF's false-positive rate in the way real traffic is: names and
addresses with apostrophes and hyphens, text in many scripts, support messages with the
punctuation and SQL-ish English words people write, URLs and e-mail addresses in fields,
tokens in headers and cookies, Markdown and a little harmless HTML-like text. It holds no
attack, disguised or not.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import unicodedata
import urllib.parse
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, write_jsonl  # noqa: E402

SEED = 20261130
DEFAULT_COUNT = 5100
R = random.Random(SEED)

# ============================================================================================
# Pools of realistic values


FIRST = ["Siobhán", "Seán", "Jean-Luc", "Anne-Marie", "María José", "José Luis", "João", "Mariana",
         "Łukasz", "Małgorzata", "Zoë", "Björn", "Ελένη", "Γιώργος", "محمد", "فاطمة", "小明", "丽华",
         "Aoife", "Dónal", "Hans-Jürgen", "François", "Renée", "Aminata", "Moussa", "Chiara",
         "Giuseppe", "Ana", "Pedro", "Inês", "Camille", "Émilie", "Krzysztof", "Agnieszka",
         "Oliver", "Sophie", "Liam", "Nadia", "Yusuf", "Mei", "Kenji", "Priya", "Daniel", "Laura",
         "Carmen", "Íñigo", "Núria", "Jordi", "Aleksandra", "Dimitris", "Nikolaos", "Karim",
         "Lena", "Jürgen", "Sören", "Maëlle", "Noé", "Tomás", "Conceição", "Pilar"]
LAST = ["O'Brien", "D'Angelo", "N'Diaye", "O'Connor", "D'Souza", "O'Donnell", "McCarthy",
        "García-Ortiz", "Gonçalves", "Wiśniewski", "Kowalczyk-Nowak", "Ångström", "Παπαδοπούλου",
        "Γεωργίου", "الأحمد", "الزهراني", "王", "李", "Ní Bhriain", "Mac Giolla Phádraig",
        "Müller", "L'Hôte", "O'Hara", "Diallo", "Traoré", "Dell'Acqua", "D'Alessandro",
        "Fernández", "da Silva", "dos Santos", "Lefèvre", "de la Fuente", "van der Berg",
        "Schmidt-Rottluff", "Nowak", "Smith", "Jones", "Khan", "Chen", "Tanaka", "Sharma",
        "Martínez", "López", "Puig i Ferrer", "Zieliński", "Pérez de Guzmán", "Dupont",
        "Ó Súilleabháin", "St. John", "Al-Farsi", "Ben Youssef", "Ferreira", "Carvalho"]
STREETS = [
    ("Calle de O'Donnell 12, 3º B", "28009", "Madrid", "ESP", "40.4217", "-3.6745"),
    ("Rua d'Ouro 145, 2.º Esq.", "1100-061", "Lisboa", "PRT", "38.7104", "-9.1378"),
    ("Carrer d'Aragó 255, baixos", "08007", "Barcelona", "ESP", "41.3917", "2.1649"),
    ("C/ Dr. Fleming, 7 - 2ºA", "28036", "Madrid", "ESP", "40.4590", "-3.6876"),
    ("Av. da Liberdade 110", "1250-146", "Lisboa", "PRT", "38.7197", "-9.1455"),
    ("Rue de l'Église 3", "67000", "Strasbourg", "FRA", "48.5839", "7.7455"),
    ("12 Quai d'Orsay", "75007", "Paris", "FRA", "48.8620", "2.3060"),
    ("Via dell'Indipendenza 8", "40121", "Bologna", "ITA", "44.4984", "11.3445"),
    ("Hauptstraße 5a", "69117", "Heidelberg", "DEU", "49.4107", "8.7059"),
    ("Müllerstraße 163", "13353", "Berlin", "DEU", "52.5470", "13.3540"),
    ("ul. Marszałkowska 84/92 m. 12", "00-514", "Warszawa", "POL", "52.2288", "21.0129"),
    ("Λεωφ. Κηφισίας 44", "151 25", "Μαρούσι", "GRC", "38.0450", "23.8040"),
    ("شارع الملك فهد 3120", "12333", "الرياض", "SAU", "24.7136", "46.6753"),
    ("北京市朝阳区建国路88号", "100022", "北京", "CHN", "39.9087", "116.4605"),
    ("Flat 2/1, 14 O'Connell St", "D01 F5P2", "Dublin", "IRL", "53.3498", "-6.2603"),
    ("Paseo de la Castellana 259D", "28046", "Madrid", "ESP", "40.4775", "-3.6880"),
    ("Gran Via de les Corts Catalanes 585", "08007", "Barcelona", "ESP", "41.3863", "2.1642"),
    ("Praça do Comércio", "1100-148", "Lisboa", "PRT", "38.7075", "-9.1364"),
    ("333 Post St (Union Square Garage)", "94108", "San Francisco", "USA", "37.7880", "-122.4075"),
    ("Calle Mayor 1, esc. izda., 4º-D", "28013", "Madrid", "ESP", "40.4168", "-3.7038"),
    ("Rúa do Vilar 30", "15705", "Santiago de Compostela", "ESP", "42.8782", "-8.5448"),
    ("Avinguda Diagonal 640, 6a planta", "08017", "Barcelona", "ESP", "41.3925", "2.1325"),
    ("Kurfürstendamm 26", "10719", "Berlin", "DEU", "52.5030", "13.3290"),
    ("Rynek Główny 1/3", "31-042", "Kraków", "POL", "50.0614", "19.9372"),
    ("Ερμού 15", "105 63", "Αθήνα", "GRC", "37.9760", "23.7330"),
]
# The name of a charging site at each address of STREETS (same order).
SITE_AT = ["Aparcamiento Plaza de O'Donnell", "Parking Rua d'Ouro", "Aparcament Aragó – Eixample",
           "Clínica Dr. Fleming – Parking", "Hotel Avenida Liberdade (garagem)", "Parking de l'Église",
           "Parking Quai d'Orsay", "Autorimessa dell'Indipendenza", "P+R Heidelberg-Altstadt",
           "Müllerstraße Supermarkt-Parkplatz", "Parking Marszałkowska (poziom -1)", "Κηφισίας Mall – P2",
           "موقف الملك فهد", "建国路88号地下停车场", "O'Connell St Car Park", "Centro Castellana 259 (planta -2)",
           "Arenas de Barcelona – Parking", "Terreiro do Paço", "Union Square Garage",
           "Aparcamiento Plaza Mayor", "Aparcadoiro Rúa do Vilar", "L'Illa Diagonal – Pàrquing",
           "Select Hotel Berlin – Tiefgarage", "Galeria Krakowska (poziom -2)", "Πάρκινγκ Ερμού"]
SITE_NAMES = ["Aparcamiento Plaza de O'Donnell", "Parking Rua d'Ouro", "Centro Comercial La Vaguada",
              "Union Square Garage", "Select Hotel Berlin – Tiefgarage", "Estación de Atocha, P2",
              "Área de Servicio El Cruce (A-3, km 54)", "Hipermercado Continente – Piso -1",
              "Carrefour Express & Co.", "Parc relais Porte d'Orléans", "Galeria Krakowska (poziom -2)",
              "Λιμάνι Πειραιά – Πύλη Ε2", "Fundació Joan Miró", "Aeropuerto T4 – Parking Larga Estancia",
              "Intermarché Saint-Jean-d'Angély", "P+R Heidelberg-Süd", "Drop-off zone, Hotel Mayor",
              "Mercado de San Miguel (Calle del Conde de Miranda)", "McDonald's A-6 Las Rozas",
              "IKEA Alfafar", "Leroy Merlin — Aldeia de Paio Pires"]
CITIES_MAP = [("40.4168", "-3.7038"), ("41.3874", "2.1686"), ("38.7223", "-9.1393"),
              ("48.8566", "2.3522"), ("52.5200", "13.4050"), ("52.2297", "21.0122"),
              ("37.9838", "23.7275"), ("39.4699", "-0.3763"), ("43.2630", "-2.9350"),
              ("41.1579", "-8.6291"), ("45.4642", "9.1900"), ("53.3498", "-6.2603")]
CONNECTORS = ["CCS2", "TYPE2", "CHADEMO", "TYPE1", "SCHUKO"]
OCPI_STANDARDS = ["IEC_62196_T2", "IEC_62196_T2_COMBO", "CHADEMO", "DOMESTIC_F", "IEC_62196_T1_COMBO"]
PARTIES = [("ES", "VLT"), ("ES", "IBE"), ("PT", "MOB"), ("FR", "EVB"), ("DE", "ELW"), ("NL", "EVN"),
           ("PL", "GRN"), ("IT", "ENX"), ("GR", "PPC"), ("BE", "ALL")]
ISSUERS = ["Energía Verde S.L.", "Mobi.E", "Électricité d'Ouest SAS", "Stadtwerke Müllheim GmbH",
           "EV-Net B.V.", "GreenWay Polska Sp. z o.o.", "Enel X Way S.r.l.", "ΔΕΗ blue",
           "O'Neill Fleet Services Ltd", "Lidl & Co. Roaming"]
EMAIL_DOMAINS = ["gmail.com", "outlook.com", "yahoo.es", "sapo.pt", "orange.fr", "web.de", "wp.pl",
                 "icloud.com", "proton.me", "empresa-ejemplo.es", "flota.example.com"]
VEHICLES = [("Renault", "Zoe ZE50"), ("Tesla", "Model 3"), ("Hyundai", "Ioniq 5"), ("Kia", "EV6"),
            ("Volkswagen", "ID.3"), ("Peugeot", "e-208"), ("BMW", "i4 eDrive40"), ("Nissan", "Leaf e+"),
            ("Škoda", "Enyaq iV 80"), ("MG", "MG4"), ("BYD", "Atto 3"), ("Cupra", "Born"),
            ("Fiat", "500e"), ("Citroën", "ë-C4"), ("Mercedes-Benz", "EQA 250+")]
LANGS = ["es-ES,es;q=0.9,en;q=0.8", "pt-PT,pt;q=0.9", "fr-FR,fr;q=0.9,en-US;q=0.7", "de-DE,de;q=0.9",
         "pl-PL,pl;q=0.9,en;q=0.5", "el-GR,el;q=0.9", "ar-SA,ar;q=0.9,en;q=0.6", "zh-CN,zh;q=0.9",
         "en-GB,en;q=0.9", "en-US,en;q=0.9", "ca-ES,ca;q=0.9,es;q=0.8", "it-IT,it;q=0.9"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
]
APP_UAS = ["VoltFleet/3.12.0 (iPhone; iOS 18.1; Scale/3.00)", "VoltFleet/3.12.0 (Android 14; Pixel 8)",
           "VoltFleet/3.11.4 (Android 13; SM-A546B)", "VoltFleet/3.12.1 (iPad; iPadOS 17.6)",
           "okhttp/4.12.0", "VoltFleet/3.10.2 CFNetwork/1568.200.51 Darwin/24.1.0"]
PARTNER_UAS = ["Java-http-client/21.0.5", "python-requests/2.32.3", "Apache-HttpClient/5.3.1 (Java/17.0.12)",
               "axios/1.7.7", "Go-http-client/2.0", "EVRoam-OCPI/2.4 (+https://evroam.example/bot)"]
REFERERS = ["https://www.google.com/", "https://www.google.es/", "https://duckduckgo.com/",
            "https://www.bing.com/search?q=cargador+coche+electrico+madrid",
            "https://www.facebook.com/", "https://t.co/x7Qm2LpZ0a", "https://voltfleet.example/",
            "https://voltfleet.example/es/mapa?lat=40.4168&lng=-3.7038&radius=5km",
            "https://www.electromaps.example/puntos-de-carga/espana/madrid"]

# Free text of drivers and of the public, with the punctuation and words real people use.
SUPPORT = [
    "won't start -- tried twice; is connector #{conn} broken?",
    "select another charger? it says 'error {err}' and then nothing",
    "1=1 isn't what I was charged: the app shows {kwh} kWh but the receipt says {kwh2} kWh",
    "The map said price < 0.30 €/kWh but I paid {price} €/kWh (session {sid})",
    "<3 the app, but the map takes ages to load on 4G",
    "Can you update my invoice address? It should be {street}, {zip} {city}",
    "I'd like to delete my account and all my data, as per GDPR art. 17. Thanks.",
    "Please drop the second charge from my card; it was a duplicate (both {eur} €).",
    "Where is the 'order by date' option in the sessions list? I can only order by distance.",
    "The union of two bad things today: the cable was stuck AND the screen was black :(",
    "It charged from 14:02 to 14:03 (1 min) then stopped. Tried 1 more time, same thing.",
    "Insert the card, wait for the beep, and then... nothing happens.",
    "see <attached> screenshot",
    "Screenshot attached (IMG_{img}.PNG) -- the red banner says \"Connector unavailable\"",
    "My e-mail changed, please use {email} from now on.",
    "Link to the charger: https://voltfleet.example/chargers/{loc}?connector={conn}&ref=app",
    "Is it card and/or app? The FAQ says \"card and/or app\" but the sticker says app only.",
    "Wo finde ich die Rechnung für März? Die Ladesäule in der Hauptstraße hat 2× abgebrochen.",
    "O carregador não inicia; já tentei duas vezes (cartão e app). Podem verificar?",
    "Le chargeur ne démarre pas ; j'ai essayé deux fois — l'écran affiche « erreur {err} ».",
    "Ładowarka nie działa od wczoraj, złącze nr {conn} jest uszkodzone. Proszę o zwrot.",
    "Ο φορτιστής δεν ξεκινά· δοκίμασα δύο φορές. Μπορείτε να βοηθήσετε;",
    "الشاحن لا يعمل منذ الصباح، جربت مرتين. أرجو المساعدة.",
    "充电桩无法启动，我试了两次。{conn}号连接器坏了吗？",
    "⚡🔌 the charger is 👍 but the parking barrier is ❌ (ticket machine out of paper)",
    "The price went from 0,39 to 0,49 €/kWh -- why?? (I'm on the 'Plus' plan)",
    "Session {sid} has been stuck in 'ACTIVE' since {date}",
    "Hi, where's the 'Stop' button? I'm at level -2 of the car park and there's no signal;",
    "Thanks!! :-) :) ;-) it works now",
    "Refund #R-2026-{num6} - any news? It's been 10 days.",
    "C'est l'appli qui plante quand je sélectionne « CCS2 » puis « disponible ».",
    "Your terms say 'drop-off within 15 min' -- I was 16 min; is there a grace period?",
    "Tried: 1) app, 2) RFID card, 3) calling the hotline (+34 900 {num3} {num3b}). None worked.",
    "Sorry if this is the wrong place -- who do I talk to about a business account (20+ vehicles)?",
    "I selected 'Fast (50 kW)' from the list but got 22 kW. Where is the 150 kW one?",
    "Update: it works now. Please ignore my previous message!",
    "Can I pay with Apple Pay / Google Pay? Or only cards?",
    "The charger at {site} shows 'Out of order' since Monday.",
    "Invoices from Jan–Mar 2026 please, to facturas@empresa-ejemplo.es (NIF B-{num8})",
    "Why is the idle fee €0.10/min > the one advertised (€0.05/min)?",
    "My kid pressed the emergency stop, sorry! 😅 Can you reset it remotely?",
    "Where/how do I add a second vehicle to my profile?",
    "It says \"Authorization failed (code 0x1F)\" every time.",
    "Connector said \"Preparing\" for 10 min, then \"Faulted\".",
    "Is the tariff per kWh or per minute -- or both?",
    "Between 22:00 and 06:00 the price should be lower, right? I was charged the day rate.",
    "Not sure if I should select 'AC' or 'DC' for a Renault Zoe... help?",
    "Small bug: when I order by distance the list shows 12 km before 3 km.",
    "Could you update the opening hours? Mon–Fri 08:00–20:00; Sat 09:00–14:00; Sun closed.",
    "I got two e-mails (\"Your session has ended\") for one session. Is that normal?",
    "App v3.12.0 on Android 14 -- the 'Start' button is greyed out.",
    "The QR code sticker on EVSE {evse} is damaged/unreadable.",
    "Charged 45 min, 18.3 kWh, total {eur} € -- seems right, but no receipt arrived.",
    "Where do I insert the promo code \"WINTER-26\"?",
    "Hello,\nmy card ending in {last4} was declined, but the bank says everything's OK.\nRegards,\n{name}",
    "**Charger:** {loc}\n- connector: {conn}\n- error: `E{err}`\n\n> it just says \"try again later\"",
    "Is there a way to export my sessions (CSV or PDF) for my company's expense report?",
    "The screen shows: Please wait... (100%) -> then reboots.",
    "I'm a taxi driver; can I get a monthly invoice instead of one per session?",
    "For the record: I waited 2h (from 10:15 to 12:15) and nobody answered the phone.",
    "Could the next update add a filter \"only 24/7\"? Thanks in advance!",
    "Am I supposed to unplug first or press stop first?",
    "The parking is free for 2 h or 1 more if you charge, says the sign -- is that right?",
    "Hi! Quick question: is the 150 kW charger at {site} back in service?",
    "Cargué 30 min y me cobraron 1 h. ¿Pueden revisarlo? Gracias.",
    "No me llega el código de verificación por SMS al +34 6{num8}.",
    "Bonjour, la borne n°{conn} est occupée par une voiture thermique depuis ce matin...",
    "Guten Tag, die App zeigt \"verfügbar\", aber die Säule ist besetzt/defekt.",
    "Olá! A fatura tem o NIF errado: deveria ser {num9}.",
    "Dzień dobry, czy mogę zmienić metodę płatności w trakcie ładowania?",
    "Καλησπέρα, η χρέωση εμφανίστηκε δύο φορές στην κάρτα μου.",
]
# Notes written by Back Office staff.
STAFF_NOTES = [
    "Firmware update 1.4.2 -> 1.4.3 done remotely; reboot OK.",
    "Connector #{conn} cable damaged (outer sheath). Technician booked for {day}.",
    "Driver {name} called: session stuck, stopped remotely at {time}.",
    "Select 'Inoperative' until the new RCD is installed -- see ticket VF-{num4}.",
    "Site host (Sr. {last}) asks to update the opening hours; parking closes at 22:00.",
    "Do NOT reset: the site's owner wants to be present. Call +351 21 {num3} {num4}.",
    "Payment terminal swapped; old serial 00{num8}, new serial 00{num8b}.",
    "<p>Checked on site:</p><ul><li>display OK</li><li>RFID reader OK</li></ul>",
    "Customer says price < advertised; refunded {eur} € (case #{num6}).",
    "Energy meter reading 000{num9} kWh at {date}",
    "Drop the old tariff from this EVSE after 2026-12-01; the new one is TAR-{num4}.",
    "Union contract (sindicato) parking: only staff cars after 18:00.",
    "Order by phone: 2 new Type 2 cables (ref. T2-32A-7M).",
    "Moved from LOC-{num4} to LOC-{num4b}; update the OCPI location too.",
    "Charger reports 'GroundFailure' and/or 'OverCurrentFailure' since the storm.",
    "Meeting with Ayuntamiento de O'Donnell district: permit for 4 more bays.",
    "From: site owner. Where: level -1. What: barrier opens only with ticket.",
    "**Note**: the QR sticker on the left EVSE is missing; printed new one (v2).",
    "Cliente {name}: quiere factura a nombre de \"Transportes D'Angelo, S.L.\"",
    "Ladepunkt gesperrt wegen Baustelle (Hauptstraße 5a) bis KW 50.",
]
SEARCHES = ["O'Brien", "D'Angelo", "N'Diaye", "Jean-Luc", "o'donnell", "Rua d'Ouro", "ES*VLT*E000{num4}*1",
            "LOC-{num4}", "select hotel", "union square", "drop-off", "update firmware", "order 4471",
            "charger 42 or 43", "delete request", "insert card", "where is the", "García-Ortiz",
            "Müller", "Wiśniewski", "Παπαδοπούλου", "王", "+34 612", "@gmail.com", "B-{num8}",
            "04A2{hex6}", "ES-VLT-C{num8}", "2026-11-{dd}", "refund > 20", "kWh < 5", "#{num6}",
            "\"Calle Mayor\"", "from madrid", "by date", "-", "50% off", "a&b parking",
            "Ayuntamiento", "Aparcamiento (P2)", "Faulted", "0x1F", "n/a", "¿?"]
ALT_TEXTS = [
    ("en", "€{p}/kWh, plus €{m}/min after the first 2 h. Parking not included."),
    ("es", "{pc} €/kWh; a partir de 2 h, {mc} €/min. El aparcamiento no está incluido."),
    ("pt", "{pc} €/kWh; após 2 h acresce {mc} €/min. Estacionamento não incluído."),
    ("fr", "{pc} €/kWh ; au-delà de 2 h : {mc} €/min. Stationnement non compris."),
    ("de", "{pc} €/kWh – ab 2 Std. zusätzlich {mc} €/Min. Parken nicht inbegriffen."),
    ("pl", "{pc} €/kWh, po 2 godz. dodatkowo {mc} €/min. Parking niewliczony."),
    ("it", "{pc} €/kWh; dopo 2 ore {mc} €/min. Parcheggio escluso."),
    ("el", "{pc} €/kWh· μετά τις 2 ώρες {mc} €/λεπτό. Δεν περιλαμβάνεται στάθμευση."),
    ("ar", "{p} يورو لكل كيلوواط ساعة، و{m} يورو للدقيقة بعد ساعتين."),
    ("zh", "每千瓦时 {p} 欧元；2 小时后每分钟 {m} 欧元。不含停车费。"),
    ("ca", "{pc} €/kWh; a partir de 2 h, {mc} €/min. L'aparcament no hi és inclòs."),
]
DIRECTIONS = [
    ("es", "Entrada por la calle de O'Donnell; planta -1, plazas 12–15 (junto al ascensor)."),
    ("pt", "Entrada pela Rua d'Ouro, piso -2, lugares 4 a 7."),
    ("en", "Enter from Post St; level 2, bays next to the pay station. Height limit 2.1 m."),
    ("fr", "Accès par l'entrée « Porte d'Orléans », niveau -1, à gauche après la barrière."),
    ("de", "Zufahrt über die Hauptstraße, Ebene -1, Stellplätze 3–6 (rechts)."),
    ("pl", "Wjazd od ul. Marszałkowskiej, poziom -2, miejsca 40–44."),
    ("el", "Είσοδος από την Ερμού, υπόγειο -1, θέσεις 8–10."),
]

# ============================================================================================
# Small generators


def rint(a: int, b: int) -> int:
    return R.randint(a, b)


def pick(seq):
    return R.choice(seq)


def digits(n: int) -> str:
    return "".join(pick("0123456789") for _ in range(n))


def hexs(n: int, upper: bool = False) -> str:
    s = "".join(pick("0123456789abcdef") for _ in range(n))
    return s.upper() if upper else s


def alnum(n: int) -> str:
    return "".join(pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def uid() -> str:
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def rbytes(n: int) -> bytes:
    return bytes(R.getrandbits(8) for _ in range(n))


def iso(day: int | None = None, h: int | None = None, m: int | None = None, s: int | None = None) -> str:
    day = rint(1, 30) if day is None else day
    h = rint(0, 23) if h is None else h
    m = rint(0, 59) if m is None else m
    s = rint(0, 59) if s is None else s
    return f"2026-11-{day:02d}T{h:02d}:{m:02d}:{s:02d}Z"


def jwt(sub: str) -> str:
    header = {"alg": "ES256", "typ": "JWT", "kid": f"vf-2026-{rint(1, 11):02d}"}
    iat = 1795000000 + rint(0, 3000000)
    payload = {"iss": "https://auth.voltfleet.example", "sub": sub, "iat": iat, "exp": iat + 3600}
    return ".".join([b64url(json.dumps(header, separators=(",", ":")).encode()),
                     b64url(json.dumps(payload, separators=(",", ":")).encode()), b64url(rbytes(64))])


def person() -> tuple[str, str]:
    return pick(FIRST), pick(LAST)


def ascii_fold(s: str) -> str:
    """'María José' -> 'mariajose', as people write their names in e-mail addresses."""
    s = unicodedata.normalize("NFKD", s.replace("ł", "l").replace("Ł", "L").replace("ß", "ss"))
    return "".join(c for c in s if c.isascii() and (c.isalnum() or c == "-")).lower()


def email_for(first: str, last: str) -> str:
    f, l = ascii_fold(first), ascii_fold(last)
    if not f:
        f = pick(["user", "cliente", "driver"])
    if not l:
        l = digits(4)
    tag = pick(["", "", "", "+ev", "+voltfleet", f"{rint(1, 99)}"])
    sep = pick([".", "_", "-", ""])
    return f"{f}{sep}{l}{tag}@{pick(EMAIL_DOMAINS)}"


def phone() -> str:
    return pick([f"+34 6{digits(2)} {digits(3)} {digits(3)}", f"+351 9{digits(2)} {digits(3)} {digits(3)}",
                 f"+33 6 {digits(2)} {digits(2)} {digits(2)} {digits(2)}", f"+49 (0)151 {digits(8)}",
                 f"+48 {digits(3)}-{digits(3)}-{digits(3)}", f"+30 69{digits(8)}", f"0{digits(3)} {digits(6)}"])


def fill(template: str) -> str:
    first, last = person()
    street = pick(STREETS)
    vals = {
        "conn": str(rint(1, 4)), "err": str(pick([42, 17, 3, 1001, 57, 8])),
        "kwh": f"{rint(5, 60)},{rint(0, 9)}", "kwh2": f"{rint(5, 60)},{rint(0, 9)}",
        "price": f"0.{rint(35, 69)}", "sid": uid(), "street": street[0], "zip": street[1],
        "city": street[2], "eur": f"{rint(3, 45)},{rint(0, 99):02d}", "img": digits(4),
        "email": email_for(first, last), "loc": f"LOC-{digits(4)}", "date": iso(),
        "num6": digits(6), "num3": digits(3), "num3b": digits(3), "num4": digits(4),
        "num4b": digits(4), "num8": digits(8), "num8b": digits(8), "num9": digits(9),
        "site": pick(SITE_NAMES), "evse": f"ES*VLT*E{digits(6)}*{rint(1, 4)}", "last4": digits(4),
        "name": f"{first} {last}", "last": last, "day": pick(["Monday", "Tuesday", "Wed 3/12", "lunes", "jueves"]),
        "time": f"{rint(0, 23):02d}:{rint(0, 59):02d}", "hex6": hexs(6, True), "dd": f"{rint(1, 30):02d}",
    }
    return template.format(**vals)


def q(pairs, plus: bool = False, safe: str = "") -> str:
    """A query string as a browser (plus=True, form style) or the app (%20) writes it."""
    quote = urllib.parse.quote_plus if plus else urllib.parse.quote
    return "&".join(f"{quote(str(k), safe=safe)}={quote(str(v), safe=safe)}" for k, v in pairs)


def form(pairs) -> str:
    """application/x-www-form-urlencoded as browsers serialise it."""
    return "&".join(f"{urllib.parse.quote_plus(str(k), safe='*')}={urllib.parse.quote_plus(str(v), safe='*')}"
                    for k, v in pairs)


def js(obj) -> str:
    """JSON as the clients write it: mostly compact UTF-8, sometimes spaced or \\u-escaped."""
    return json.dumps(obj, ensure_ascii=R.random() < 0.25, separators=(",", ":") if R.random() < 0.75 else (", ", ": "))


def req(kind: str, note: str, method: str, path: str, query: str | None = None, headers=None,
        content_type: str | None = None, body: str | None = None) -> dict:
    return {"kind": kind, "label": "benign", "source": "voltfleet-synthetic", "method": method,
            "path": path, "query": query, "headers": [list(h) for h in (headers or [])],
            "content_type": content_type, "body": body, "note": note}


# ---------------------------------------------------------------------------------------------
# Header sets


def app_headers(with_auth: bool = True):
    h = [("User-Agent", pick(APP_UAS))]
    if with_auth:
        h.append(("Authorization", "Bearer " + jwt(uid())))
    if R.random() < 0.3:
        h.append(("X-Request-Id", uid()))
    if R.random() < 0.15:
        h.append(("Accept-Language", pick(LANGS)))
    return h


def ga() -> str:
    return f"GA1.1.{digits(9)}.{rint(1700000000, 1796000000)}"


def web_headers(referer: bool = True, logged_in: bool | None = None):
    h = [("User-Agent", pick(BROWSERS))]
    cookies = [f"_ga={ga()}", f"cookie_consent={pick(['all', 'necessary', 'analytics,marketing'])}"]
    if R.random() < 0.5:
        cookies.append(f"lang={pick(['es', 'pt', 'en', 'fr', 'de', 'pl'])}")
    if logged_in or (logged_in is None and R.random() < 0.3):
        cookies.append(f"vf_session={base64.b64encode(rbytes(rint(16, 40))).decode()}")
    if R.random() < 0.15:
        cookies.append(f"_ga_{alnum(10).upper()}=GS1.1.{rint(1700000000, 1796000000)}.{rint(1, 40)}.1.{rint(1700000000, 1796000000)}.0.0.0")
    R.shuffle(cookies)
    h.append(("Cookie", "; ".join(cookies)))
    if referer and R.random() < 0.6:
        h.append(("Referer", pick(REFERERS)))
    if R.random() < 0.15:
        h.append(("Accept-Language", pick(LANGS)))
    return h


def bo_headers(path_ref: str = "/backoffice/"):
    csrf = b64url(rbytes(32))
    h = [("User-Agent", pick(BROWSERS[:3] + BROWSERS[5:])),
         ("Cookie", f"bo_session={b64url(rbytes(24))}.{b64url(rbytes(9))}; csrftoken={csrf}" + pick(["", "; bo_theme=dark"])),
         ("Referer", f"https://voltfleet.example{path_ref}")]
    return h, csrf


def ocpi_headers(cc: str, pid: str):
    h = [("Authorization", "Token " + base64.b64encode(uid().encode()).decode()),
         ("X-Request-ID", uid()), ("X-Correlation-ID", uid()), ("OCPI-from-country-code", cc), ("OCPI-from-party-id", pid),
         ("OCPI-to-country-code", "ES"), ("OCPI-to-party-id", "VLT")]
    if R.random() < 0.5:
        h.append(("User-Agent", pick(PARTNER_UAS)))
    return h


# ============================================================================================
# OCPI 2.2.1 objects


def ocpi_connector(cid: str, last_updated: str, tariff: str) -> dict:
    std = pick(OCPI_STANDARDS)
    dc = std in ("IEC_62196_T2_COMBO", "CHADEMO", "IEC_62196_T1_COMBO")
    c = {"id": cid, "standard": std, "format": "CABLE" if dc else pick(["SOCKET", "CABLE"]),
         "power_type": "DC" if dc else pick(["AC_3_PHASE", "AC_1_PHASE"]),
         "max_voltage": pick([920, 500, 400]) if dc else pick([400, 230]),
         "max_amperage": pick([200, 125, 500]) if dc else pick([32, 16, 63]),
         "max_electric_power": pick([50000, 150000, 300000]) if dc else pick([22000, 11000, 7400]),
         "tariff_ids": [tariff], "last_updated": last_updated}
    if R.random() < 0.3:
        c["terms_and_conditions"] = f"https://voltfleet.example/{pick(['es', 'pt', 'en'])}/legal/terms?v=2026-{rint(1, 11):02d}"
    return c


def ocpi_evse(cc: str, pid: str, n: int, last_updated: str, tariff: str, lat: str, lng: str) -> dict:
    ev = {"uid": f"{pid}-E{digits(6)}-{n}", "evse_id": f"{cc}*{pid}*E{digits(6)}*{n}",
          "status": pick(["AVAILABLE", "AVAILABLE", "CHARGING", "BLOCKED", "OUTOFORDER", "RESERVED"]),
          "capabilities": R.sample(["RFID_READER", "REMOTE_START_STOP_CAPABLE", "CREDIT_CARD_PAYABLE",
                                    "CONTACTLESS_CARD_SUPPORT", "RESERVABLE", "UNLOCK_CAPABLE"], rint(1, 4)),
          "connectors": [ocpi_connector(str(i), last_updated, tariff) for i in range(1, rint(1, 2) + 1)],
          "floor_level": pick(["-1", "-2", "0", "1", "P2"]),
          "coordinates": {"latitude": f"{float(lat) + R.uniform(-0.0005, 0.0005):.6f}",
                          "longitude": f"{float(lng) + R.uniform(-0.0005, 0.0005):.6f}"},
          "physical_reference": pick(["1", "2", "A", "B-12", "Bay 4", "Plaza 15"]),
          "parking_restrictions": R.sample(["EV_ONLY", "CUSTOMERS", "PLUGGED"], rint(0, 2)),
          "last_updated": last_updated}
    if R.random() < 0.3:
        ev["status_schedule"] = [{"period_begin": iso(rint(1, 15)), "period_end": iso(rint(16, 30)), "status": "OUTOFORDER"}]
    return ev


def site() -> tuple[str, tuple]:
    i = R.randrange(len(STREETS))
    return SITE_AT[i], STREETS[i]


def ocpi_location(cc: str, pid: str, loc_id: str, last_updated: str) -> dict:
    name, (street, zip_, city, country, lat, lng) = site()
    tariff = f"TAR-{digits(4)}"
    loc = {"country_code": cc, "party_id": pid, "id": loc_id, "publish": True,
           "name": name, "address": street, "city": city, "postal_code": zip_,
           "country": country, "coordinates": {"latitude": lat, "longitude": lng},
           "parking_type": pick(["ON_STREET", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "PARKING_LOT"]),
           "evses": [ocpi_evse(cc, pid, i, last_updated, tariff, lat, lng) for i in range(1, rint(1, 2) + 1)],
           "operator": {"name": pick(ISSUERS), "website": f"https://www.{pick(['voltfleet', 'energia-verde', 'evnet'])}.example/",
                        "logo": {"url": f"https://cdn.voltfleet.example/logos/{pid.lower()}.png", "category": "OPERATOR",
                                 "type": "png", "width": 512, "height": 512}},
           "time_zone": pick(["Europe/Madrid", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Warsaw", "Europe/Athens"]),
           "opening_times": pick([{"twentyfourseven": True},
                                  {"twentyfourseven": False, "regular_hours": [
                                      {"weekday": d, "period_begin": "08:00", "period_end": "22:00"} for d in range(1, 7)],
                                   "exceptional_closings": [{"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}]}]),
           "facilities": R.sample(["HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "PARKING_LOT",
                                   "AIRPORT", "TRAIN_STATION", "WIFI"], rint(0, 3)),
           "charging_when_closed": pick([True, False]),
           "last_updated": last_updated}
    if R.random() < 0.5:
        loc["directions"] = [{"language": lang, "text": text} for lang, text in R.sample(DIRECTIONS, rint(1, 3))]
    if R.random() < 0.4:
        loc["energy_mix"] = {"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 45.5},
                                                                          {"source": "WIND", "percentage": 54.5}],
                             "supplier_name": pick(ISSUERS), "energy_product_name": "100% Renovable – Tarifa Plana"}
    if R.random() < 0.3:
        loc["images"] = [{"url": f"https://cdn.voltfleet.example/img/{loc_id.lower()}-{i}.jpg?w=1024&q=80",
                          "thumbnail": f"https://cdn.voltfleet.example/img/{loc_id.lower()}-{i}.jpg?w=128",
                          "category": pick(["LOCATION", "ENTRANCE", "CHARGER"]), "type": "jpeg"} for i in range(1, 3)]
    return loc


def ocpi_token(cc: str, pid: str, uid_: str, last_updated: str) -> dict:
    first, last = person()
    t = {"country_code": cc, "party_id": pid, "uid": uid_, "type": pick(["RFID", "APP_USER", "RFID"]),
         "contract_id": f"{cc}-{pid}-C{digits(8)}-{rint(0, 9)}", "visual_number": f"{digits(4)}-{digits(4)}-{digits(4)}",
         "issuer": pick(ISSUERS), "group_id": f"GRP-{digits(5)}", "valid": R.random() < 0.9,
         "whitelist": pick(["ALLOWED", "ALWAYS", "ALLOWED_OFFLINE", "NEVER"]),
         "language": pick(["es", "pt", "fr", "de", "pl", "en", "el"]),
         "default_profile_type": pick(["GREEN", "FAST", "CHEAP", "REGULAR"]), "last_updated": last_updated}
    if R.random() < 0.3:
        t["energy_contract"] = {"supplier_name": pick(ISSUERS), "contract_id": f"EC-{digits(10)}"}
    if R.random() < 0.2:
        t["visual_number"] = f"{first[:1]}. {last}"
    return t


def cdr_token(cc: str, pid: str) -> dict:
    return {"country_code": cc, "party_id": pid, "uid": hexs(14, True), "type": "RFID",
            "contract_id": f"{cc}-{pid}-C{digits(8)}-{rint(0, 9)}"}


def price(excl: float) -> dict:
    return {"excl_vat": round(excl, 2), "incl_vat": round(excl * 1.21, 2)}


def charging_periods(start_h: int, n: int) -> list:
    out = []
    for i in range(n):
        out.append({"start_date_time": iso(28, (start_h + i) % 24, 0, 0),
                    "dimensions": [{"type": "ENERGY", "volume": round(R.uniform(2, 40), 3)},
                                   {"type": pick(["TIME", "PARKING_TIME", "MAX_CURRENT"]), "volume": round(R.uniform(0.1, 1), 3)}],
                    "tariff_id": f"TAR-{digits(4)}"})
    return out


def ocpi_session(cc: str, pid: str, sid: str, last_updated: str) -> dict:
    h = rint(0, 20)
    kwh = round(R.uniform(1, 80), 3)
    return {"country_code": cc, "party_id": pid, "id": sid, "start_date_time": iso(28, h, rint(0, 59), 0),
            "end_date_time": iso(28, h + rint(1, 3), rint(0, 59), 0) if R.random() < 0.5 else None,
            "kwh": kwh, "cdr_token": cdr_token(cc, pid), "auth_method": pick(["AUTH_REQUEST", "WHITELIST", "COMMAND"]),
            "authorization_reference": alnum(20), "location_id": f"LOC-{digits(6)}",
            "evse_uid": f"{pid}-E{digits(6)}-{rint(1, 4)}", "connector_id": str(rint(1, 3)),
            "meter_id": f"MTR{digits(10)}", "currency": "EUR", "charging_periods": charging_periods(h, rint(1, 3)),
            "total_cost": price(kwh * 0.39), "status": pick(["ACTIVE", "COMPLETED", "PENDING", "INVALID"]),
            "last_updated": last_updated}


def ocpi_tariff(cc: str, pid: str, tid: str, last_updated: str) -> dict:
    p = rint(25, 69) / 100
    m = rint(5, 20) / 100
    fmt = {"p": f"{p:.2f}", "m": f"{m:.2f}", "pc": f"{p:.2f}".replace(".", ","), "mc": f"{m:.2f}".replace(".", ",")}
    texts = R.sample(ALT_TEXTS, rint(2, 6))
    t = {"country_code": cc, "party_id": pid, "id": tid, "currency": "EUR", "type": pick(["REGULAR", "AD_HOC_PAYMENT", "PROFILE_CHEAP"]),
         "tariff_alt_text": [{"language": lang, "text": text.format(**fmt)} for lang, text in texts],
         "tariff_alt_url": f"https://voltfleet.example/tarifas/{tid.lower()}?lang=es&utm_source=ocpi",
         "elements": [{"price_components": [{"type": "ENERGY", "price": p, "vat": 21.0, "step_size": 1}]},
                      {"price_components": [{"type": "TIME", "price": round(m * 60, 2), "vat": 21.0, "step_size": 60}],
                       "restrictions": {"min_duration": 7200}},
                      {"price_components": [{"type": "PARKING_TIME", "price": 1.5, "vat": 21.0, "step_size": 300}],
                       "restrictions": {"start_time": "22:00", "end_time": "06:00", "day_of_week": ["SATURDAY", "SUNDAY"]}}][:rint(1, 3)],
         "last_updated": last_updated}
    if R.random() < 0.3:
        t["min_price"] = price(1.0)
        t["max_price"] = price(60.0)
    return t


def ocpi_cdr(cc: str, pid: str, last_updated: str) -> dict:
    name, (street, zip_, city, country, lat, lng) = site()
    kwh = round(R.uniform(3, 90), 3)
    h = rint(0, 20)
    return {"country_code": cc, "party_id": pid, "id": f"CDR-{digits(10)}", "start_date_time": iso(27, h, 5, 0),
            "end_date_time": iso(27, h + rint(1, 3), 40, 12), "session_id": uid(), "cdr_token": cdr_token(cc, pid),
            "auth_method": "WHITELIST", "cdr_location": {
                "id": f"LOC-{digits(6)}", "name": name, "address": street, "city": city,
                "postal_code": zip_, "country": country, "coordinates": {"latitude": lat, "longitude": lng},
                "evse_uid": f"{pid}-E{digits(6)}-1", "evse_id": f"{cc}*{pid}*E{digits(6)}*1", "connector_id": "1",
                "connector_standard": pick(OCPI_STANDARDS), "connector_format": "CABLE", "connector_power_type": "DC"},
            "meter_id": f"MTR{digits(10)}", "currency": "EUR",
            "tariffs": [ocpi_tariff(cc, pid, f"TAR-{digits(4)}", last_updated)] if R.random() < 0.4 else [],
            "charging_periods": charging_periods(h, rint(1, 4)), "signed_data": {
                "encoding_method": "OCMF", "encoding_method_version": 1, "public_key": b64url(rbytes(48)),
                "signed_values": [{"nature": "Start", "plain_data": f"OCMF|{{\"RD\":[{{\"RV\":{digits(5)}.{digits(2)}}}]}}",
                                   "signed_data": base64.b64encode(rbytes(48)).decode()}], "url": "https://transparenz.software/"}
            if R.random() < 0.2 else None,
            "total_cost": price(kwh * 0.39), "total_fixed_cost": price(0.5), "total_energy": kwh,
            "total_energy_cost": price(kwh * 0.35), "total_time": round(R.uniform(0.2, 4), 3),
            "total_parking_time": round(R.uniform(0, 0.5), 3), "remark": pick([None, "Session stopped by EV (SOC 100%).",
                                                                            "Stopped remotely by operator; see ticket VF-" + digits(4),
                                                                            "Meter value missing at start -- estimated."]),
            "credit": False, "home_charging_compensation": False, "last_updated": last_updated}


def strip_none(obj):
    if isinstance(obj, dict):
        return {k: strip_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [strip_none(v) for v in obj]
    return obj


# ============================================================================================
# Scenarios: each returns one request


def api_locations_near():
    lat, lng = pick(CITIES_MAP)
    pairs = [("lat", f"{float(lat) + R.uniform(-0.02, 0.02):.4f}"), ("lng", f"{float(lng) + R.uniform(-0.02, 0.02):.4f}"),
             ("radius", pick(["2", "5", "10", "25"]))]
    if R.random() < 0.6:
        pairs.append(("connector", ",".join(R.sample(CONNECTORS, rint(1, 2)))))
    if R.random() < 0.5:
        pairs.append(("available", "true"))
    if R.random() < 0.4:
        pairs.append(("min_power_kw", pick(["22", "50", "150"])))
    if R.random() < 0.3:
        pairs.append(("sort", pick(["distance", "price", "-power"])))
    pairs += [("limit", pick(["20", "50"])), ("offset", pick(["0", "0", "20", "40"]))]
    return req("api", "app: find chargers around a point", "GET", "/api/v1/locations", q(pairs, safe=","), app_headers(R.random() < 0.8))


def api_locations_search():
    text = pick([s[0] for s in STREETS] + [s[2] for s in STREETS] + SITE_NAMES +
                ["charger near me", "cargador rápido", "carregador Lisboa", "Gare d'Austerlitz", "Plac Zbawiciela",
                 "Kurfürstendamm", "Σύνταγμα", "مطار", "火车站", "IKEA", "McDonald's", "24/7", "CCS2 150kW"])
    pairs = [("q", text)]
    if R.random() < 0.5:
        lat, lng = pick(CITIES_MAP)
        pairs += [("near", f"{lat},{lng}")]
    return req("api", "app: search locations by text", "GET", "/api/v1/locations", q(pairs, safe=","), app_headers())


def api_location_detail():
    loc = f"LOC-{digits(6)}"
    sub = pick(["", "", "/evses", "/tariffs", "/reviews", "/photos"])
    query = q([("lang", pick(["es", "pt", "en", "fr"]))]) if R.random() < 0.4 else None
    return req("api", "app: location detail", "GET", f"/api/v1/locations/{loc}{sub}", query, app_headers(R.random() < 0.7))


def api_session_start():
    body = {"location_id": f"LOC-{digits(6)}", "evse_uid": f"VLT-E{digits(6)}-{rint(1, 4)}", "connector_id": str(rint(1, 3)),
            "payment_method_id": f"pm_{alnum(24)}", "vehicle_id": uid()}
    if R.random() < 0.4:
        body["limits"] = {"max_kwh": rint(10, 60), "max_minutes": pick([30, 45, 60, 90]), "target_soc": pick([80, 90, 100])}
    if R.random() < 0.3:
        body["promo_code"] = pick(["WINTER-26", "BIENVENIDO10", "O'CHARGE-5"])
    return req("api", "app: start a charging session", "POST", "/api/v1/sessions", None, app_headers(),
               "application/json", js(body))


def api_session_stop():
    sid = uid()
    body = pick([None, js({"reason": pick(["user_request", "target_reached", "app_stop"])})])
    return req("api", "app: stop a charging session", "POST", f"/api/v1/sessions/{sid}/stop", None, app_headers(),
               "application/json" if body else None, body)


def api_sessions_list():
    pairs = [("status", pick(["active", "completed", "all"])), ("from", iso(1, 0, 0, 0)), ("to", iso(30, 23, 59, 59))]
    if R.random() < 0.5:
        pairs.append(("order_by", pick(["start_date", "-start_date", "cost", "kwh"])))
    pairs.append(("page", str(rint(1, 5))))
    return req("api", "app: list my sessions", "GET", "/api/v1/sessions", q(pairs, safe=":"), app_headers())


def api_session_detail():
    return req("api", "app: poll a session", "GET", f"/api/v1/sessions/{uid()}", None, app_headers())


def api_profile_update():
    first, last = person()
    street, zip_, city, country, *_ = pick(STREETS)
    body = {"first_name": first, "last_name": last, "email": email_for(first, last), "phone": phone(),
            "address": {"line1": street, "line2": pick(["", "Portal 2", "Bloque B, escalera izq.", "c/o Ní Bhriain"]),
                        "postal_code": zip_, "city": city, "country": country},
            "language": pick(["es", "pt", "en", "fr", "de", "pl", "el", "ar", "zh"]),
            "notifications": {"email": True, "push": pick([True, False]), "sms": False}}
    if R.random() < 0.5:
        make, model = pick(VEHICLES)
        body["vehicles"] = [{"make": make, "model": model, "plate": f"{digits(4)} {alnum(3).upper()}",
                             "connectors": R.sample(CONNECTORS[:3], rint(1, 2)), "battery_kwh": pick([52, 58, 77, 82.5])}]
    if R.random() < 0.3:
        body["company"] = {"name": pick(["Transportes D'Angelo, S.L.", "O'Brien & Sons Ltd", "Taxi Müller GmbH",
                                          "Entregas Rápidas (Grupo Ñ)", "Łódź Logistics Sp. z o.o."]),
                           "vat_id": pick([f"ESB{digits(8)}", f"PT{digits(9)}", f"DE{digits(9)}", f"IE{digits(7)}W"])}
    return req("api", "app: update profile", pick(["PATCH", "PUT"]), "/api/v1/me", None, app_headers(),
               "application/json", js(body))


def api_me():
    return req("api", "app: read profile", "GET", pick(["/api/v1/me", "/api/v1/me/vehicles", "/api/v1/me/payment-methods",
                                                         "/api/v1/me/notifications"]), None, app_headers())


def api_support_message():
    body = {"message": fill(pick(SUPPORT)), "category": pick(["charging", "billing", "app", "account", "other"])}
    if R.random() < 0.5:
        body["session_id"] = uid()
    if R.random() < 0.3:
        body["location_id"] = f"LOC-{digits(6)}"
    if R.random() < 0.25:
        body["attachments"] = [{"file_id": uid(), "name": f"IMG_{digits(4)}.JPG", "size": rint(80000, 4000000)}]
    if R.random() < 0.2:
        body["device"] = {"os": pick(["iOS 18.1", "Android 14"]), "app": "3.12.0", "model": pick(["iPhone15,2", "Pixel 8", "SM-S921B"])}
    return req("api", "app: support message", "POST", "/api/v1/support/messages", None, app_headers(),
               "application/json", js(body))


def api_review():
    comment = pick(["Great spot, 2 × 150 kW and a café next door :)", "Cable too short for a Model 3 (port on the left).",
                    "Works, but the 'available' status is often wrong.", "Bays blocked by ICE cars -- again.",
                    "Perfecto, rápido y sin colas.", "Très bien placé, mais l'accès est mal indiqué.",
                    "Alles gut, nur die App-Anzeige hängt manchmal.", "Ótima localização; preço < concorrência.",
                    "Super ładowarka, polecam!", "Άψογα!", "ممتاز", "很方便 👍", "Meh. 3/5 -- slow at peak hours.",
                    "Select the left EVSE, the right one is slower (50 kW vs 150 kW).",
                    "Union Square garage: follow signs to level 2, chargers by the elevator."])
    body = {"rating": rint(1, 5), "comment": comment, "tags": R.sample(["fast", "cheap", "safe", "lit", "covered", "shops"], rint(0, 3))}
    return req("api", "app: review a location", "POST", f"/api/v1/locations/LOC-{digits(6)}/reviews", None, app_headers(),
               "application/json", js(body))


def api_tariffs():
    pairs = [("location_id", f"LOC-{digits(6)}"), ("currency", "EUR")]
    if R.random() < 0.5:
        pairs.append(("at", iso()))
    return req("api", "app: tariffs of a location", "GET", "/api/v1/tariffs", q(pairs, safe=":"), app_headers())


def api_token_refresh():
    body = {"grant_type": "refresh_token", "refresh_token": b64url(rbytes(48)), "client_id": "voltfleet-ios"}
    return req("api", "app: refresh the access token", "POST", "/api/v1/auth/token", None, app_headers(False),
               "application/json", js(body))


def api_login():
    first, last = person()
    body = {"email": email_for(first, last), "password": pick(["Tr0ub4dor&3", "correct horse battery staple", "Ma'drid2026!",
                                                               "s3cr3t-PASS#", "ÑandúAzul_77", "p@ss w0rd (new)"]),
            "device_name": pick(["iPhone de María", "Pixel 8", "Jean-Luc's iPad", "Samsung S24"])}
    return req("api", "app: sign in", "POST", "/api/v1/auth/login", None, app_headers(False), "application/json", js(body))


def api_payment_method():
    body = {"type": "card", "provider_token": f"tok_{alnum(24)}", "billing_details": {
        "name": " ".join(person()), "address": {"line1": pick(STREETS)[0], "country": pick(["ES", "PT", "FR", "DE", "PL", "GR", "IE"])}},
        "set_default": pick([True, False])}
    return req("api", "app: add a payment method", "POST", "/api/v1/me/payment-methods", None, app_headers(),
               "application/json", js(body))


def api_filters():
    body = {"bbox": [[-3.75, 40.38], [-3.65, 40.45]], "filters": {"connectors": R.sample(CONNECTORS, rint(1, 3)),
            "power_kw": [pick([0, 22, 50]), pick([150, 350])], "operators": R.sample([p for _, p in PARTIES], rint(0, 3)),
            "open_now": pick([True, False]), "payment": R.sample(["app", "rfid", "card", "apple_pay"], rint(1, 2))},
            "zoom": rint(10, 17), "clusters": True}
    return req("api", "app: map tiles with filters", "POST", "/api/v1/locations/search", None, app_headers(False),
               "application/json", js(body))


def api_invoice():
    return req("api", "app: download an invoice", "GET", f"/api/v1/invoices/INV-2026-{digits(6)}.pdf",
               q([("download", "1")]) if R.random() < 0.5 else None, app_headers())


# ---------------------------------------------------------------------------------------------
# Website


STATIC = ["/static/css/app.3f2a1c9e.css", "/static/js/main.7b1e0d42.js", "/static/js/vendor.a91c3f07.js",
          "/static/img/logo.svg", "/static/img/hero-madrid@2x.webp", "/static/fonts/inter-var-latin.woff2",
          "/favicon.ico", "/apple-touch-icon.png", "/robots.txt", "/sitemap.xml", "/manifest.webmanifest",
          "/static/img/connectors/ccs2.svg", "/static/img/connectors/type2.svg", "/.well-known/security.txt"]
PAGES = ["/", "/es/", "/pt/", "/en/", "/fr/", "/de/", "/pl/", "/es/tarifas", "/en/pricing", "/es/preguntas-frecuentes",
         "/en/faq", "/es/empresas", "/en/business", "/es/blog/como-cargar-tu-coche-electrico",
         "/en/blog/what-is-ccs2-and-why-it-matters", "/pt/blog/carregar-em-lisboa", "/es/legal/privacidad",
         "/en/legal/terms", "/es/contacto", "/en/contact", "/es/app", "/fr/l-application", "/de/ueber-uns",
         "/es/mapa", "/en/map", "/es/blog/o-donnell-nuevo-hub", "/en/careers", "/en/press/2026-11-30-voltfleet-reaches-10000-chargers"]


def web_static():
    path = pick(STATIC)
    query = f"v={hexs(8)}" if R.random() < 0.3 else None
    h = [("User-Agent", pick(BROWSERS))]
    if R.random() < 0.7:
        h.append(("Referer", "https://voltfleet.example" + pick(PAGES)))
    return req("web", "website: static asset", "GET", path, query, h)


def web_page():
    path = pick(PAGES)
    pairs = []
    if R.random() < 0.3:
        pairs += [("utm_source", pick(["google", "newsletter", "facebook", "partner_o'neill", "linkedin"])),
                  ("utm_medium", pick(["cpc", "email", "social"])),
                  ("utm_campaign", pick(["black-friday-2026", "invierno_2026", "lançamento-app", "ev&you"]))]
    if R.random() < 0.1:
        pairs.append(("gclid", alnum(40)))
    if R.random() < 0.1:
        pairs.append(("fbclid", "IwAR" + alnum(50)))
    return req("web", "website: page", "GET", path, q(pairs, plus=True) if pairs else None, web_headers())


def web_map():
    lat, lng = pick(CITIES_MAP)
    pairs = [("lat", lat), ("lng", lng), ("radius", pick(["2km", "5km", "10km", "25km"]))]
    if R.random() < 0.7:
        pairs.append(("connector", pick(CONNECTORS)))
    if R.random() < 0.6:
        pairs.append(("available", pick(["true", "false"])))
    if R.random() < 0.3:
        pairs.append(("power", pick(["22-50", "50-150", "150+", ">50"])))
    if R.random() < 0.2:
        pairs.append(("q", pick([s[0] for s in STREETS] + SITE_NAMES)))
    if R.random() < 0.2:
        pairs.append(("operator", ",".join(R.sample([p for _, p in PARTIES], 2))))
    return req("web", "website: charger map", "GET", pick(["/es/mapa", "/en/map", "/chargers", "/"]),
               q(pairs, plus=True, safe=pick(["", ","])), web_headers())


def web_search():
    text = pick(["cargador Madrid centro", "precio kWh", "cómo funciona", "tarjeta RFID", "factura", "O'Donnell",
                 "horario 24/7", "union square", "select plan", "update app", "delete account", "order card",
                 "Ladestation Berlin", "borne de recharge Paris", "ładowarka Kraków", "φορτιστής Αθήνα",
                 "شاحن سيارة", "充电站", "Rua d'Ouro", "CCS2 vs Type 2", "¿cuánto cuesta?", "50 kW or 150 kW",
                 "drop-off", "100% renewable", "a&b"])
    return req("web", "website: site search", "GET", pick(["/es/buscar", "/en/search", "/search"]),
               q([("q", text)] + ([("page", str(rint(2, 4)))] if R.random() < 0.2 else []), plus=True), web_headers())


def web_contact():
    first, last = person()
    pairs = [("name", f"{first} {last}"), ("email", email_for(first, last)), ("phone", phone()),
             ("subject", pick(["Billing", "Facturación", "Partnership / Colaboración", "Press", "Other", "Instalar un cargador en mi comunidad"])),
             ("message", fill(pick(SUPPORT))), ("consent", "on"), ("csrf_token", b64url(rbytes(32)))]
    if R.random() < 0.3:
        pairs.insert(2, ("company", pick(["Transportes D'Angelo, S.L.", "O'Brien & Sons Ltd", "Comunidad de Propietarios C/ Mayor 1",
                                          "Hotel L'Écluse", "—"])))
    if R.random() < 0.2:
        pairs.append(("website", pick(["https://www.empresa-ejemplo.es/?ref=voltfleet&lang=es", "http://obrien-sons.example.ie",
                                       "www.dangelo-transportes.example"])))
    return req("web", "website: contact form", "POST", pick(["/es/contacto", "/en/contact", "/contact"]), None,
               web_headers(logged_in=False), "application/x-www-form-urlencoded", form(pairs))


def boundary() -> str:
    return pick(["----WebKitFormBoundary" + alnum(16), "---------------------------" + digits(29),
                 "----geckoformboundary" + hexs(32)])


def multipart(b: str, fields, files) -> str:
    parts = []
    for name, value in fields:
        parts.append(f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    for name, filename, ctype, content in files:
        parts.append(f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                     f"Content-Type: {ctype}\r\n\r\n{content}\r\n")
    return "".join(parts) + f"--{b}--\r\n"


def session_log() -> str:
    lines = []
    h, m = rint(6, 20), rint(0, 50)
    for i in range(rint(4, 10)):
        ev = pick(["App: tapped 'Start' on connector 2", "Charger: Preparing", "Charger: Charging (22.1 kW)",
                   "App: 'Authorization failed (code 0x1F)'", "Charger: SuspendedEV", "App: tapped 'Stop'",
                   "Charger: Finishing", "Note: tried again -- same result", "Screen: \"Please wait...\"",
                   "Car: 80% -> 80% (no change)"])
        lines.append(f"{h:02d}:{(m + i) % 60:02d}  {ev}")
    return "\n".join(lines) + "\n"


def web_support_upload():
    first, last = person()
    b = boundary()
    fields = [("name", f"{first} {last}"), ("email", email_for(first, last)), ("message", fill(pick(SUPPORT))),
              ("csrf_token", b64url(rbytes(32)))]
    files = [("attachment", pick(["charging-log.txt", "registro de carga.txt", "notes (2).txt"]), "text/plain", session_log())]
    return req("web", "website: support form with a text file", "POST", pick(["/es/soporte", "/en/support"]), None,
               web_headers(logged_in=True), f"multipart/form-data; boundary={b}", multipart(b, fields, files))


# ---------------------------------------------------------------------------------------------
# Back Office


def bo_page():
    path = pick(["/backoffice/", "/backoffice/dashboard", "/backoffice/chargers", f"/backoffice/chargers/LOC-{digits(6)}",
                 f"/backoffice/chargers/LOC-{digits(6)}/evses/VLT-E{digits(6)}-1", "/backoffice/sessions",
                 f"/backoffice/sessions/{uid()}", "/backoffice/drivers", f"/backoffice/drivers/{rint(1000, 99999)}",
                 "/backoffice/tariffs", "/backoffice/tokens", "/backoffice/partners", "/backoffice/reports/monthly",
                 "/backoffice/static/bo.4c2e1a.css", "/backoffice/static/bo.91ab3d.js"])
    h, _ = bo_headers()
    return req("bo", "back office: page", "GET", path, None, h)


def bo_search():
    h, _ = bo_headers(pick(["/backoffice/drivers", "/backoffice/chargers", "/backoffice/sessions"]))
    term = fill(pick(SEARCHES))
    pairs = [("q", term)]
    if R.random() < 0.4:
        pairs.append(("status", pick(["", "active", "blocked", "OUTOFORDER", "AVAILABLE"])))
    if R.random() < 0.3:
        pairs += [("from", f"2026-11-{rint(1, 15):02d}"), ("to", f"2026-11-{rint(16, 30):02d}")]
    if R.random() < 0.3:
        pairs.append(("sort", pick(["name", "-created", "last_seen", "city"])))
    if R.random() < 0.2:
        pairs.append(("page", str(rint(2, 9))))
    return req("bo", "back office: search box", "GET", pick(["/backoffice/drivers", "/backoffice/chargers", "/backoffice/sessions",
                                                               "/backoffice/search"]), q(pairs, plus=True), h)


def bo_note():
    h, csrf = bo_headers(f"/backoffice/chargers/LOC-{digits(6)}")
    pairs = [("csrfmiddlewaretoken", csrf), ("note", fill(pick(STAFF_NOTES))),
             ("visibility", pick(["internal", "internal", "partner"]))]
    if R.random() < 0.3:
        pairs.append(("notify", pick(["ops@voltfleet.example", "tecnico.madrid@voltfleet.example", ""])))
    return req("bo", "back office: charger note", "POST", f"/backoffice/chargers/LOC-{digits(6)}/notes", None, h,
               "application/x-www-form-urlencoded", form(pairs))


def bo_driver_edit():
    first, last = person()
    street, zip_, city, country, *_ = pick(STREETS)
    h, csrf = bo_headers(f"/backoffice/drivers/{rint(1000, 99999)}/edit")
    pairs = [("csrfmiddlewaretoken", csrf), ("first_name", first), ("last_name", last), ("email", email_for(first, last)),
             ("phone", phone()), ("street", street), ("postal_code", zip_), ("city", city), ("country", country),
             ("language", pick(["es", "pt", "en", "fr"])), ("notes", fill(pick(STAFF_NOTES + ["", "", "VIP -- fleet customer"]))),
             ("is_active", "on")]
    if R.random() < 0.3:
        pairs.append(("iban", f"ES{digits(2)} {digits(4)} {digits(4)} {digits(2)} {digits(10)}"))
    return req("bo", "back office: edit a driver", "POST", f"/backoffice/drivers/{rint(1000, 99999)}/edit", None, h,
               "application/x-www-form-urlencoded", form(pairs))


def bo_token():
    h, csrf = bo_headers("/backoffice/tokens/new")
    cc, pid = pick(PARTIES)
    first, last = person()
    pairs = [("csrfmiddlewaretoken", csrf), ("uid", hexs(pick([8, 14]), True)), ("type", pick(["RFID", "APP_USER", "AD_HOC_USER"])),
             ("contract_id", f"{cc}-{pid}-C{digits(8)}-{rint(0, 9)}"), ("visual_number", f"{digits(4)} {digits(4)} {digits(4)}"),
             ("issuer", pick(ISSUERS)), ("holder", f"{first} {last}"), ("whitelist", pick(["ALLOWED", "ALWAYS", "NEVER"])),
             ("valid", pick(["on", ""])), ("group_id", f"GRP-{digits(5)}")]
    return req("bo", "back office: register an id token", "POST", "/backoffice/tokens", None, h,
               "application/x-www-form-urlencoded", form(pairs))


def bo_tariff():
    h, csrf = bo_headers(f"/backoffice/tariffs/TAR-{digits(4)}/edit")
    p = rint(25, 69) / 100
    pairs = [("csrfmiddlewaretoken", csrf), ("name", pick(["Estándar 2026", "Nocturna (22:00–06:00)", "Flotas & empresas",
                                                           "Tarifa 'Plus'", "DC > 50 kW"])),
             ("currency", "EUR"), ("price_per_kwh", f"{p:.2f}"), ("price_per_min", pick(["0.00", "0.05", "0.10"])),
             ("idle_fee_after_min", pick(["0", "15", "120"])), ("vat", "21"),
             ("alt_text_es", f"{p:.2f} €/kWh; sin cuota de conexión".replace(".", ",")),
             ("alt_text_en", f"€{p:.2f}/kWh, no connection fee"), ("valid_from", "2026-12-01")]
    return req("bo", "back office: edit a tariff", "POST", f"/backoffice/tariffs/TAR-{digits(4)}", None, h,
               "application/x-www-form-urlencoded", form(pairs))


def bo_login():
    first, last = person()
    pairs = [("csrfmiddlewaretoken", b64url(rbytes(32))), ("username", email_for(first, last).split("@")[0]),
             ("password", pick(["Tr0ub4dor&3", "Ma'drid2026!", "correct horse battery staple", "ñ-Zürich-42", "P4ss/word;2026"])),
             ("next", pick(["/backoffice/", "/backoffice/chargers?q=O%27Brien", "/backoffice/sessions?status=active"]))]
    return req("bo", "back office: sign in", "POST", "/backoffice/login", None,
               [("User-Agent", pick(BROWSERS)), ("Cookie", f"csrftoken={b64url(rbytes(32))}"),
                ("Referer", "https://voltfleet.example/backoffice/login?next=/backoffice/")],
               "application/x-www-form-urlencoded", form(pairs))


def csv_field(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def bo_import():
    h, csrf = bo_headers("/backoffice/chargers/import")
    rows = ["charger_id,location_id,evse_uid,connector_type,max_power_kw,site_name,street,postal_code,city,country,notes"]
    for _ in range(rint(2, 12)):
        name, (street, zip_, city, country, *_) = site()
        rows.append(",".join(csv_field(x) for x in [
            f"CP-{digits(6)}", f"LOC-{digits(6)}", f"VLT-E{digits(6)}-{rint(1, 4)}", pick(CONNECTORS),
            pick(["22", "50", "150", "300", "7.4"]), name, street, zip_, city, country,
            pick(["", "", "new", "replaces CP-0042", "level -1; bays 3-6", "ask for O'Brien at reception",
                  "\"temporary\" until 2027", "owner: Ayuntamiento"])]))
    b = boundary()
    body = multipart(b, [("csrfmiddlewaretoken", csrf), ("dry_run", pick(["on", ""])), ("delimiter", ",")],
                     [("file", pick(["chargers-import-2026-11.csv", "alta cargadores (v2).csv", "import.csv"]),
                       pick(["text/csv", "application/vnd.ms-excel"]), "\r\n".join(rows) + "\r\n")])
    return req("bo", "back office: CSV import of chargers", "POST", "/backoffice/chargers/import", None, h,
               f"multipart/form-data; boundary={b}", body)


def bo_export():
    h, _ = bo_headers("/backoffice/sessions")
    pairs = [("format", pick(["csv", "xlsx", "pdf"])), ("from", "2026-11-01"), ("to", "2026-11-30"),
             ("columns", "id,start,end,kwh,cost,driver,location"), ("partner", pick(["", "ES*IBE", "PT*MOB"]))]
    return req("bo", "back office: export sessions", "GET", "/backoffice/sessions/export", q(pairs, plus=True, safe=","), h)


# ---------------------------------------------------------------------------------------------
# OCPI 2.2.1


def ocpi_put_location():
    cc, pid = pick(PARTIES)
    loc_id = f"LOC-{digits(6)}"
    body = ocpi_location(cc, pid, loc_id, iso())
    return req("ocpi", "OCPI: PUT Location", "PUT", f"/ocpi/2.2.1/locations/{cc}/{pid}/{loc_id}", None,
               ocpi_headers(cc, pid), "application/json", js(body))


def ocpi_patch_evse():
    cc, pid = pick(PARTIES)
    body = pick([{"status": pick(["AVAILABLE", "CHARGING", "OUTOFORDER", "BLOCKED", "INOPERATIVE"]), "last_updated": iso()},
                 {"status": "OUTOFORDER", "status_schedule": [{"period_begin": iso(29), "status": "OUTOFORDER"}], "last_updated": iso()}])
    return req("ocpi", "OCPI: PATCH EVSE status", "PATCH",
               f"/ocpi/2.2.1/locations/{cc}/{pid}/LOC-{digits(6)}/{pid}-E{digits(6)}-{rint(1, 3)}", None,
               ocpi_headers(cc, pid), "application/json", js(body))


def ocpi_patch_connector():
    cc, pid = pick(PARTIES)
    body = {"tariff_ids": [f"TAR-{digits(4)}"], "last_updated": iso()}
    if R.random() < 0.4:
        body["max_electric_power"] = pick([50000, 150000])
    return req("ocpi", "OCPI: PATCH Connector", "PATCH",
               f"/ocpi/2.2.1/locations/{cc}/{pid}/LOC-{digits(6)}/{pid}-E{digits(6)}-1/{rint(1, 2)}", None,
               ocpi_headers(cc, pid), "application/json", js(body))


def ocpi_put_session():
    cc, pid = pick(PARTIES)
    sid = uid()
    return req("ocpi", "OCPI: PUT Session", "PUT", f"/ocpi/2.2.1/sessions/{cc}/{pid}/{sid}", None, ocpi_headers(cc, pid),
               "application/json", js(strip_none(ocpi_session(cc, pid, sid, iso()))))


def ocpi_patch_session():
    cc, pid = pick(PARTIES)
    body = {"kwh": round(R.uniform(1, 70), 3), "charging_periods": charging_periods(rint(0, 20), 1),
            "total_cost": price(R.uniform(1, 30)), "last_updated": iso()}
    if R.random() < 0.3:
        body["status"] = "COMPLETED"
        body["end_date_time"] = iso()
    return req("ocpi", "OCPI: PATCH Session", "PATCH", f"/ocpi/2.2.1/sessions/{cc}/{pid}/{uid()}", None, ocpi_headers(cc, pid),
               "application/json", js(body))


def ocpi_post_cdr():
    cc, pid = pick(PARTIES)
    return req("ocpi", "OCPI: POST CDR", "POST", "/ocpi/2.2.1/cdrs", None, ocpi_headers(cc, pid), "application/json",
               js(strip_none(ocpi_cdr(cc, pid, iso()))))


def ocpi_put_tariff():
    cc, pid = pick(PARTIES)
    tid = f"TAR-{digits(4)}"
    return req("ocpi", "OCPI: PUT Tariff", "PUT", f"/ocpi/2.2.1/tariffs/{cc}/{pid}/{tid}", None, ocpi_headers(cc, pid),
               "application/json", js(ocpi_tariff(cc, pid, tid, iso())))


def ocpi_put_token():
    cc, pid = pick(PARTIES)
    t = hexs(14, True)
    body = ocpi_token(cc, pid, t, iso())
    return req("ocpi", "OCPI: PUT Token", "PUT", f"/ocpi/2.2.1/tokens/{cc}/{pid}/{t}", q([("type", body["type"])]),
               ocpi_headers(cc, pid), "application/json", js(body))


def ocpi_get_list():
    cc, pid = pick(PARTIES)
    module = pick(["locations", "sessions", "cdrs", "tariffs", "tokens"])
    pairs = [("date_from", iso(rint(1, 20))), ("date_to", iso(rint(21, 30))), ("offset", str(50 * rint(0, 20))), ("limit", "50")]
    return req("ocpi", f"OCPI: paginated GET of {module}", "GET", f"/ocpi/2.2.1/{module}", q(pairs[:rint(1, 4)], safe=":"),
               ocpi_headers(cc, pid))


def ocpi_get_object():
    cc, pid = pick(PARTIES)
    path = pick([f"/ocpi/2.2.1/locations/LOC-{digits(6)}", f"/ocpi/2.2.1/locations/LOC-{digits(6)}/{pid}-E{digits(6)}-1",
                 f"/ocpi/2.2.1/tokens/{cc}/{pid}/{hexs(14, True)}", f"/ocpi/2.2.1/tariffs/{cc}/{pid}/TAR-{digits(4)}",
                 "/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"])
    return req("ocpi", "OCPI: GET one object or the version details", "GET", path, None, ocpi_headers(cc, pid))


def ocpi_command():
    cc, pid = pick(PARTIES)
    cmd = pick(["START_SESSION", "STOP_SESSION", "UNLOCK_CONNECTOR", "RESERVE_NOW"])
    resp_url = f"https://ocpi.{pid.lower()}-roaming.example/ocpi/emsp/2.2.1/commands/{cmd}/{uid()}"
    body = {"response_url": resp_url}
    if cmd == "START_SESSION":
        body.update({"token": ocpi_token(cc, pid, hexs(14, True), iso()), "location_id": f"LOC-{digits(6)}",
                     "evse_uid": f"VLT-E{digits(6)}-1", "authorization_reference": alnum(16)})
    elif cmd == "STOP_SESSION":
        body["session_id"] = uid()
    elif cmd == "UNLOCK_CONNECTOR":
        body.update({"location_id": f"LOC-{digits(6)}", "evse_uid": f"VLT-E{digits(6)}-1", "connector_id": "1"})
    else:
        body.update({"token": ocpi_token(cc, pid, hexs(14, True), iso()), "expiry_date": iso(30),
                     "reservation_id": digits(10), "location_id": f"LOC-{digits(6)}"})
    return req("ocpi", f"OCPI: command {cmd}", "POST", f"/ocpi/2.2.1/commands/{cmd}", None, ocpi_headers(cc, pid),
               "application/json", js(body))


def ocpi_credentials():
    cc, pid = pick(PARTIES)
    body = {"token": b64url(rbytes(32)), "url": f"https://ocpi.{pid.lower()}-roaming.example/ocpi/versions",
            "roles": [{"role": pick(["EMSP", "CPO"]), "party_id": pid, "country_code": cc, "business_details": {
                "name": pick(ISSUERS), "website": f"https://www.{pid.lower()}.example/?lang={cc.lower()}",
                "logo": {"url": f"https://www.{pid.lower()}.example/logo.png", "category": "OPERATOR", "type": "png"}}}]}
    return req("ocpi", "OCPI: credentials exchange", pick(["POST", "PUT"]), "/ocpi/2.2.1/credentials", None,
               ocpi_headers(cc, pid), "application/json", js(body))


def ocpi_response():
    """A partner's reply posted back to our response_url (async command result)."""
    cc, pid = pick(PARTIES)
    body = {"result": pick(["ACCEPTED", "REJECTED", "TIMEOUT", "EVSE_OCCUPIED"]),
            "message": [{"language": "en", "text": pick(["Session started.", "EVSE is occupied -- try another one.",
                                                          "Charger didn't respond within 30 s."])},
                        {"language": pick(["es", "pt", "fr"]), "text": pick(["Sesión iniciada.", "O carregador não respondeu.",
                                                                            "La borne n'a pas répondu."])}]}
    return req("ocpi", "OCPI: async command result", "POST", f"/ocpi/emsp/2.2.1/commands/START_SESSION/{uid()}", None,
               ocpi_headers(cc, pid), "application/json", js(body))


# ---------------------------------------------------------------------------------------------

# (scenario, weight): the weights are shares of the generated requests.
PARTS = [
    # driver app, /api/v1: 34 %
    (api_locations_near, 6), (api_locations_search, 4), (api_location_detail, 4), (api_session_start, 3),
    (api_session_stop, 2), (api_sessions_list, 2), (api_session_detail, 2), (api_profile_update, 2),
    (api_me, 2), (api_support_message, 3), (api_review, 1), (api_tariffs, 1), (api_token_refresh, 1),
    (api_login, 1), (api_payment_method, 0.5), (api_filters, 1), (api_invoice, 0.5),
    # website: 22 %
    (web_static, 6), (web_page, 5), (web_map, 5), (web_search, 2), (web_contact, 3), (web_support_upload, 1),
    # back office: 22 %
    (bo_page, 4), (bo_search, 6), (bo_note, 4), (bo_driver_edit, 3), (bo_token, 1.5), (bo_tariff, 1),
    (bo_login, 0.5), (bo_import, 0.75), (bo_export, 1),
    # OCPI 2.2.1: 22 %
    (ocpi_put_location, 1.5), (ocpi_patch_evse, 4), (ocpi_patch_connector, 1.5), (ocpi_put_session, 2),
    (ocpi_patch_session, 3), (ocpi_post_cdr, 1), (ocpi_put_tariff, 1.5), (ocpi_put_token, 2),
    (ocpi_get_list, 2), (ocpi_get_object, 1), (ocpi_command, 1), (ocpi_credentials, 0.25), (ocpi_response, 0.25),
]


def generate(count: int) -> list[dict]:
    total = sum(w for _, w in PARTS)
    plan = []
    for fn, w in PARTS:
        plan += [fn] * max(1, round(count * w / total))
    while len(plan) > count:
        plan.pop(R.randrange(len(plan)))
    while len(plan) < count:
        plan.append(R.choice(PARTS)[0])
    R.shuffle(plan)
    out = []
    for n, fn in enumerate(plan, start=1):
        r = fn()
        kind = r.pop("kind")
        out.append({"id": f"vf-{kind}-{n:05d}", **r})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(CORPUS / "benign.jsonl"))
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    args = ap.parse_args()
    recs = generate(args.count)
    write_jsonl(Path(args.out), recs)
    kinds: dict[str, int] = {}
    for r in recs:
        k = r["id"].split("-")[1]
        kinds[k] = kinds.get(k, 0) + 1
    print(f"wrote {len(recs)} benign requests to {args.out}")
    for k, n in kinds.items():
        print(f"  {k}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
